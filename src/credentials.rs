//! Service-account credentials per source host: from `--source-host`/`--source-user`/
//! `MIRROR_TOKEN`/`--source-token-file`, or a `--credentials` TOML file.
