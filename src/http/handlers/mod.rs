//! Thin HTTP handlers, one file per resource: parse and authenticate, call a service, render.
pub mod admin;
pub mod auth;
pub mod billing;
pub mod documents;
pub mod exports;
pub mod images;
pub mod jobs;
pub mod signup;
pub mod system;
pub mod web;
