//! The application's accounts, in memory, and how it checks their passwords.

use super::*;

/// How an account's password is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// argon2id, checked in the engine's slow-hash pool (as an application should).
    Argon2,
    /// The password itself (fast: most tests log in dozens of times).
    Plain,
}

#[derive(Clone)]
struct Account {
    email: String,
    hash: Stored,
}

#[derive(Clone)]
enum Stored {
    Argon2(String),
    Plain(String),
}

/// The application's accounts, in memory. Cheap to clone: clones share the accounts (every
/// instance of a deployment sees the same ones).
#[derive(Clone, Default)]
pub struct Users {
    accounts: Arc<Mutex<HashMap<String, Account>>>,
    next: Arc<AtomicU64>,
    pub(super) kdf: KdfPool,
}

impl Users {
    /// Adds an account for `email` with `password`; returns its id.
    pub fn add(&self, email: &str, password: &str, hashing: Hashing) -> String {
        let email = email.trim().to_lowercase();
        let hash = match hashing {
            Hashing::Argon2 => Stored::Argon2(
                argon2::Argon2::default()
                    .hash_password(password.as_bytes())
                    .unwrap()
                    .to_string(),
            ),
            Hashing::Plain => Stored::Plain(password.to_owned()),
        };
        let id = format!("user-{:04}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let mut accounts = self.accounts.lock().unwrap();
        assert!(
            accounts.values().all(|account| account.email != email),
            "{email} is taken"
        );
        accounts.insert(id.clone(), Account { email, hash });
        id
    }

    /// Deletes the account `id`; `false` when there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.accounts.lock().unwrap().remove(id).is_some()
    }

    /// The id of the account of `email`.
    pub fn id_of(&self, email: &str) -> Option<String> {
        self.find(email).map(|(id, _)| id)
    }

    fn find(&self, email: &str) -> Option<(String, Stored)> {
        let email = email.trim().to_lowercase();
        self.accounts
            .lock()
            .unwrap()
            .iter()
            .find(|(_, account)| account.email == email)
            .map(|(id, account)| (id.clone(), account.hash.clone()))
    }
}

#[async_trait]
impl PasswordCheck for Users {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        let Some((id, stored)) = self.find(username) else {
            return Ok(None);
        };
        let matches = match stored {
            Stored::Plain(plain) => plain == password,
            Stored::Argon2(hash) => {
                let password = password.to_owned();
                self.kdf
                    .run(move || {
                        let hash = argon2::PasswordHash::new(&hash).unwrap();
                        argon2::Argon2::default()
                            .verify_password(password.as_bytes(), &hash)
                            .is_ok()
                    })
                    .await
                    .map_err(|_| PasswordCheckFailed)?
            }
        };
        Ok(matches.then_some(id))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(self.accounts.lock().unwrap().contains_key(user))
    }

    async fn user_of(&self, username: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(self.find(username).map(|(id, _)| id))
    }

    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(self
            .accounts
            .lock()
            .unwrap()
            .get(user)
            .map(|account| account.email.clone()))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(self.find(email).map(|(id, _)| id))
    }

    async fn account_label(&self, user: &str) -> Option<String> {
        self.email_of(user).await.ok().flatten()
    }
}
