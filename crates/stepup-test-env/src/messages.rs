//! The codes the tests read out of the texts and mails the product sends.

/// The first 6-digit code in a text or mail.
///
/// # Panics
///
/// When there is none.
pub fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

/// The code of a recovery mail (the word after `Recovery code: `).
///
/// # Panics
///
/// When the mail holds none.
pub fn recovery_code_in(body: &str) -> String {
    body.split("Recovery code: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a recovery mail holds its code")
        .to_owned()
}
