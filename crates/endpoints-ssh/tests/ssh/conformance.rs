use endpoints_core::ErrorKind;
use endpoints_hostname as _;
use endpoints_ssh as _;
use endpoints_tcp as _;

#[test]
fn conformance() {
    endpoints_conformance::Suite::client("ssh")
        .valid("ssh:127.0.0.1:forward=db\\:5432:username=u:knownHosts=/dev/null")
        .valid("ssh:example.com:2222:command=cat:username=u:fingerprint=SHA256\\:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
        .valid("ssh:host:forward=/run/app.sock:username=u:agent=no:endpoint=tcp\\:127.0.0.1\\:22")
        .invalid("ssh:host:username=u", ErrorKind::MissingParameter)
        .invalid("ssh:host:forward=db:username=u", ErrorKind::InvalidValue)
        .invalid("ssh:host:forward=db\\:5432:command=cat:username=u", ErrorKind::InvalidValue)
        .invalid("ssh:host:command=cat:username=u:fingerprint=MD5\\:aa", ErrorKind::InvalidValue)
        .invalid("ssh:host:command=cat:username=u:fingerprint=SHA256:abc", ErrorKind::InvalidValue)
        .invalid("ssh:host:command=cat:username=u:agent=maybe", ErrorKind::InvalidValue)
        .invalid("ssh:host:command=cat:username=u:passphraseEnv=a=b", ErrorKind::InvalidValue)
        .invalid("ssh:host:command=cat:username=u:colour=red", ErrorKind::UnknownParameter)
        .run();
}

#[test]
fn server_conformance() {
    endpoints_conformance::Suite::server("ssh")
        .valid("ssh:127.0.0.1:listen=8080:username=u:knownHosts=/dev/null")
        .valid("ssh:bastion:2222:listen=0.0.0.0\\:8080:username=u:agent=no:knownHosts=/dev/null")
        .valid("ssh:bastion:listen=/run/app.sock:username=u:knownHosts=/dev/null")
        .invalid("ssh:bastion:username=u", ErrorKind::MissingParameter)
        .invalid(
            "ssh:bastion:listen=http:username=u:knownHosts=/dev/null",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "ssh:bastion:listen=80:command=cat:username=u",
            ErrorKind::UnknownParameter,
        )
        .run();
}
