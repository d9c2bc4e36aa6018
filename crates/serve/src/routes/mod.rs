//! The HTTP API's handlers, by what they do.

pub(crate) mod admin;
pub(crate) mod ingest;
pub(crate) mod read;
pub(crate) mod retro;
pub(crate) mod reveal;
