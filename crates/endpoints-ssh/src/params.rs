//! The parameters of the `ssh:` client, and the transport it declares.

use endpoints_core::params::{Param, ParamKind};
use endpoints_core::registry::Transport;

/// Parameters of the `ssh:` client.
pub static CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("the SSH server: host name or IP address, as known_hosts names it"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("22")
        .help("the SSH server's port"),
    Param::optional("forward", ParamKind::Text).help(
        "what the server connects to: `HOST:PORT` (direct-tcpip, as `ssh -W`) or an absolute unix socket path (direct-streamlocal); one of `forward=` and `command=`",
    ),
    Param::optional("command", ParamKind::Text).help(
        "a command the server runs; the connection is its stdin and stdout, a non-zero exit an error after its output; one of `forward=` and `command=`",
    ),
    Param::optional("username", ParamKind::Text)
        .help("the user on the server (default: $USER, as OpenSSH)"),
    Param::optional("keys", ParamKind::List).help(
        "private key files, OpenSSH format (ed25519, ECDSA, RSA), comma-separated (default: ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa and ~/.ssh/id_rsa where they exist)",
    ),
    Param::optional("passphraseFile", ParamKind::Path)
        .help("a file holding the passphrase of encrypted keys (never the passphrase inline)"),
    Param::optional("passphraseEnv", ParamKind::Text)
        .help("the name of an environment variable holding the passphrase of encrypted keys"),
    Param::optional("agent", ParamKind::Text)
        .default("yes")
        .help("ssh-agent: `yes` (the socket in SSH_AUTH_SOCK, if set), `no`, or the agent's socket path"),
    Param::optional("knownHosts", ParamKind::Path)
        .help("the known_hosts file that vouches for the server's key, `@cert-authority` and `@revoked` lines included (default: ~/.ssh/known_hosts)"),
    Param::optional("fingerprint", ParamKind::Text).help(
        "the server key's SHA-256 fingerprint (`SHA256:...`, as ssh-keygen -l prints it): that key only, known_hosts not read",
    ),
    Param::optional("endpoint", ParamKind::Description)
        .help("the transport to the SSH server, any client description (default: hostname:HOST:PORT)"),
    Param::optional("bindAddress", ParamKind::Host)
        .help("local address to connect from (the default transport only)"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("bound on reaching the server, its handshake and authentication, and on opening each channel (0: none)"),
    Param::optional("keepalive", ParamKind::Duration)
        .default("15")
        .help("a keepalive after this long without a word from the server (ServerAliveInterval; 0: none)"),
    Param::optional("keepaliveMax", ParamKind::UInt)
        .default("3")
        .help("unanswered keepalives before the session is declared dead (ServerAliveCountMax)"),
    Param::optional("idleTimeout", ParamKind::Duration)
        .default("60")
        .help("close the shared session this long after its last connection ends (0: when it ends)"),
];

/// Parameters of the `ssh:` server (listen through an SSH server, `ssh -R`).
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("the SSH server: host name or IP address, as known_hosts names it"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("22")
        .help("the SSH server's port"),
    Param::required("listen", ParamKind::Text).help(
        "where the SSH server listens: `[ADDRESS:]PORT` (tcpip-forward, as `ssh -R`; address 127.0.0.1 by default, port 0: any) or an absolute unix socket path (streamlocal-forward)",
    ),
    Param::optional("username", ParamKind::Text)
        .help("the user on the server (default: $USER, as OpenSSH)"),
    Param::optional("keys", ParamKind::List).help(
        "private key files, OpenSSH format (ed25519, ECDSA, RSA), comma-separated (default: ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa and ~/.ssh/id_rsa where they exist)",
    ),
    Param::optional("passphraseFile", ParamKind::Path)
        .help("a file holding the passphrase of encrypted keys (never the passphrase inline)"),
    Param::optional("passphraseEnv", ParamKind::Text)
        .help("the name of an environment variable holding the passphrase of encrypted keys"),
    Param::optional("agent", ParamKind::Text)
        .default("yes")
        .help("ssh-agent: `yes` (the socket in SSH_AUTH_SOCK, if set), `no`, or the agent's socket path"),
    Param::optional("knownHosts", ParamKind::Path)
        .help("the known_hosts file that vouches for the server's key, `@cert-authority` and `@revoked` lines included (default: ~/.ssh/known_hosts)"),
    Param::optional("fingerprint", ParamKind::Text).help(
        "the server key's SHA-256 fingerprint (`SHA256:...`, as ssh-keygen -l prints it): that key only, known_hosts not read",
    ),
    Param::optional("endpoint", ParamKind::Description)
        .help("the transport to the SSH server, any client description (default: hostname:HOST:PORT)"),
    Param::optional("bindAddress", ParamKind::Host)
        .help("local address to connect from (the default transport only)"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("bound on reaching the server, its handshake and authentication, and on opening each channel (0: none)"),
    Param::optional("keepalive", ParamKind::Duration)
        .default("15")
        .help("a keepalive after this long without a word from the server (ServerAliveInterval; 0: none)"),
    Param::optional("keepaliveMax", ParamKind::UInt)
        .default("3")
        .help("unanswered keepalives before the session is declared dead (ServerAliveCountMax)"),
];

/// How `ssh:` reaches its server: `endpoint=`, by default `hostname:` from `host`, `port`
/// and `bindAddress`.
pub const CLIENT_TRANSPORT: Transport = Transport::new(
    "endpoint",
    "hostname",
    &["host", "port", "bindAddress"],
    &["bindAddress"],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_transport_names_real_parameters() {
        assert!(
            CLIENT_TRANSPORT.problems(CLIENT_PARAMS).is_empty(),
            "{:?}",
            CLIENT_TRANSPORT.problems(CLIENT_PARAMS)
        );
    }
}
