//! What the `rnd-local` command line shares with the tools that drive a stack (`rnd-loadgen`):
//! the stack's `--jwt-secret` flag, and raising the open-files limit.

use clap::Args;

/// The HS256 secret, in every command that signs or verifies tokens: the stack's own
/// (`JWT_SECRET`, else the public development secret).
#[derive(Debug, Args)]
pub struct SecretArg {
    /// HS256 secret tokens are signed and verified with (the stack's).
    #[arg(long = "jwt-secret", env = "JWT_SECRET", default_value = rnd_domain::identity::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub jwt_secret: String,
}

/// Raises the open-files limit to its hard limit: 10 k WebSocket connections need 10 k
/// descriptors on each side. When it cannot, says so on stderr as `command` and carries on.
pub fn raise_open_files_limit(command: &str) {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("{command}: could not raise the open-files limit: {e}");
    }
}
