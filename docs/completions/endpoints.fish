# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_endpoints_global_optspecs
    string join \n log-level= log-format= q/quiet v/verbose h/help V/version
end

function __fish_endpoints_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_endpoints_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_endpoints_using_subcommand
    set -l cmd (__fish_endpoints_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c endpoints -n "__fish_endpoints_needs_command" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_needs_command" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_needs_command" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_needs_command" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_needs_command" -s V -l version -d 'Print version'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "check" -d 'Parse and build a description without listening or connecting; print its canonical form'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "types" -d 'The registered endpoint types and their parameters'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "listen" -d 'Listen; pipe the first connection to stdin and stdout (or serve an echo server)'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "connect" -d 'Connect; copy stdin to the connection and the connection to stdout (like nc)'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "relay" -d 'Accept on LISTEN, connect to CONNECT for each connection, copy both ways'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "run" -d 'Serve the named tunnels of a TOML file (many relays in one process, reloaded on SIGHUP)'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "completions" -d 'Print a shell\'s completion script for this command (bash, zsh, fish, elvish, powershell)'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "version" -d 'Print the version (as --version does)'
complete -c endpoints -n "__fish_endpoints_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l allow-types -d 'Build only descriptions made of these types, at every nesting level (`tcp,tls,hostname`)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l deny-types -d 'Refuse these types at every nesting level (`--deny-types exec` for a description you did not write)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l client -d 'Read DESC as a client description only'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l server -d 'Read DESC as a server description only'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -l json -d 'Print the result (or the error, with its byte span) as JSON'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -l json -d 'The same as JSON'
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -l markdown -d 'The tables of the docs (all types, or PREFIX SIDE\'s parameters)'
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand types" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l linger -d 'Once one direction has ended, give up on the other after SECS with nothing moving (default: never)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l half-close -d 'How one side\'s end of data is passed on: auto (default), always, never' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l allow-types -d 'Build only descriptions made of these types, at every nesting level (`tcp,tls,hostname`)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l deny-types -d 'Refuse these types at every nesting level (`--deny-types exec` for a description you did not write)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l pid-file -d 'Write this process\'s pid at start, and the successor\'s once it is ready' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l ready-timeout -d 'How long the successor has to be ready (default 60)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l handover-exec -d 'Start PROGRAM (with the same arguments) instead of this binary' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l echo -d 'Serve every connection as an echo server instead of stdio, until SIGINT/SIGTERM'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l once -d '(with --echo) serve one connection, then stop listening'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -l fd-store -d 'Under systemd, also keep the listeners in its descriptor store (FDSTORE=1)'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand listen" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l linger -d 'Once one direction has ended, give up on the other after SECS with nothing moving (default: never)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l half-close -d 'How one side\'s end of data is passed on: auto (default), always, never' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l allow-types -d 'Build only descriptions made of these types, at every nesting level (`tcp,tls,hostname`)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l deny-types -d 'Refuse these types at every nesting level (`--deny-types exec` for a description you did not write)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l max-connections -d 'At most N connections at once (default: what the open-files limit fits)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l idle-timeout -d 'Close a connection when no byte moved either way for SECS (> 0)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l linger -d 'After one direction ends, cut the other once nothing has moved for SECS (default 5)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l drain-timeout -d 'On SIGINT/SIGTERM, give open connections SECS to finish (default 10)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l half-close -d 'How one side\'s end of data is passed on: auto (default), always, never' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l allow-types -d 'Build only descriptions made of these types, at every nesting level (`tcp,tls,hostname`)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l deny-types -d 'Refuse these types at every nesting level (`--deny-types exec` for a description you did not write)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l pid-file -d 'Write this process\'s pid at start, and the successor\'s once it is ready' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l ready-timeout -d 'How long the successor has to be ready (default 60)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l handover-exec -d 'Start PROGRAM (with the same arguments) instead of this binary' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -l fd-store -d 'Under systemd, also keep the listeners in its descriptor store (FDSTORE=1)'
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand relay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l pid-file -d 'Write this process\'s pid at start, and the successor\'s once it is ready' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l ready-timeout -d 'How long the successor has to be ready (default 60)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l handover-exec -d 'Start PROGRAM (with the same arguments) instead of this binary' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l check -d 'Only check FILE: print each tunnel\'s canonical form (exit status 0), or the errors (2)'
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -l fd-store -d 'Under systemd, also keep the listeners in its descriptor store (FDSTORE=1)'
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand completions" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand completions" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand completions" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand completions" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand version" -l log-level -d 'What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand version" -l log-format -d 'text (default) or json (one object a line: journald, Loki)' -r
complete -c endpoints -n "__fish_endpoints_using_subcommand version" -s q -l quiet -d 'Quiet: warnings and errors only (no line for each connection)'
complete -c endpoints -n "__fish_endpoints_using_subcommand version" -s v -l verbose -d 'Verbose: -v info (connect\'s summary line), -vv debug, -vvv trace'
complete -c endpoints -n "__fish_endpoints_using_subcommand version" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "check" -d 'Parse and build a description without listening or connecting; print its canonical form'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "types" -d 'The registered endpoint types and their parameters'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "listen" -d 'Listen; pipe the first connection to stdin and stdout (or serve an echo server)'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "connect" -d 'Connect; copy stdin to the connection and the connection to stdout (like nc)'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "relay" -d 'Accept on LISTEN, connect to CONNECT for each connection, copy both ways'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "run" -d 'Serve the named tunnels of a TOML file (many relays in one process, reloaded on SIGHUP)'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "completions" -d 'Print a shell\'s completion script for this command (bash, zsh, fish, elvish, powershell)'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "version" -d 'Print the version (as --version does)'
complete -c endpoints -n "__fish_endpoints_using_subcommand help; and not __fish_seen_subcommand_from check types listen connect relay run completions version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
