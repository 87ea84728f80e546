//! The factors an engine knows, by kind, in the order they were registered.

use std::sync::Arc;

use super::Factor;
use crate::error::{MfaError, UnknownFactor};

/// The registered factors. A kind is registered once: registering it again replaces it.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    factors: Vec<Arc<dyn Factor>>,
}

impl Registry {
    pub(crate) fn register(&mut self, factor: Arc<dyn Factor>) {
        let kind = factor.kind();
        match self.factors.iter_mut().find(|known| known.kind() == kind) {
            Some(known) => *known = factor,
            None => self.factors.push(factor),
        }
    }

    /// The factor of `kind`, or [`UnknownFactor`].
    pub(crate) fn get(&self, kind: &str) -> Result<&Arc<dyn Factor>, MfaError> {
        self.find(kind).ok_or_else(|| UnknownFactor.into())
    }

    pub(crate) fn find(&self, kind: &str) -> Option<&Arc<dyn Factor>> {
        self.factors.iter().find(|factor| factor.kind() == kind)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<dyn Factor>> {
        self.factors.iter()
    }
}
