"""The security audit's checks, each yielding ``connector.Finding``s: leaked secrets in logs
(`patterns`, `logs`), file permissions (`permissions`), plain-text secrets in the config
(`config_secrets`), and the targets' transport and login roles (`targets`)."""
