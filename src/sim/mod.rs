//! The GitLab REST API simulator (axum), seeded from JSON fixtures.
