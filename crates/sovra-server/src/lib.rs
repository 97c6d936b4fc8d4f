//! Sovra's server: the service layer, the HTTP API and the composition root.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod conn;
pub mod error;
pub mod http;
pub mod model;
pub mod records;
pub mod serve;
pub mod services;
pub mod tls;
pub mod unseal;
pub mod work;

pub use error::{Error, Result};
pub use services::Sovra;
