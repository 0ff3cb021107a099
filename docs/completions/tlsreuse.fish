function __tlsreuse_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __tlsreuse_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __tlsreuse_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __tlsreuse_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __tlsreuse_parse_tokens -S
    set -l unparsed_tokens (__tlsreuse_tokens -pc)
    switch $unparsed_tokens[1]
    case 'tlsreuse'
        __tlsreuse_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'report'
            __tlsreuse_parse_subcommand -r 1 'bpf=' 'jobs=' 'memory-limit=' 'keylog=+' 'from=' 'since=' 'until=' 'server=' 'client=' 'sni=' 'session-horizon=' 'q/quiet' 'format=' 'age-buckets=' 'pairs' 'o/output=' 'html=' 'color=' 'version' 'h/help'
        case 'handshakes'
            __tlsreuse_parse_subcommand -r 1 'bpf=' 'jobs=' 'memory-limit=' 'keylog=+' 'from=' 'since=' 'until=' 'server=' 'client=' 'sni=' 'session-horizon=' 'q/quiet' 'format=' 'o/output=' 'version' 'h/help'
        case 'live'
            __tlsreuse_parse_subcommand 0 'i=' 'bpf=' 'interval=' 'duration=' 'count=' 'w=' 'keylog=+' 'user=' 'format=' 'pairs' 'color=' 'memory-limit=' 'since=' 'until=' 'server=' 'client=' 'sni=' 'session-horizon=' 'q/quiet' 'version' 'h/help'
        case 'help'
            __tlsreuse_parse_subcommand -r 1 'version'
        end
    end
end

function __tlsreuse_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __tlsreuse_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __tlsreuse_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __tlsreuse_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__tlsreuse_tokens -p)
    if test -z "$(__tlsreuse_tokens -t)"
        set -l index (count (__tlsreuse_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'tlsreuse' -f
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse" version' -l 'version' -d 'Show the version.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse" -eq 1' -fa 'report' -d 'Per service: does it resume sessions, by which mechanism, how acceptance falls with age, how long sessions live.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse" -eq 1' -fa 'handshakes' -d 'One record per TLS connection, in the order of each connection\'s first ClientHello.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse" -eq 1' -fa 'live' -d 'Analyse an interface while traffic flows: running summaries, streamed records, the final report on stop.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse report" -ge 1' -F
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" bpf' -l 'bpf' -d 'Only packets matching this libpcap filter expression, e.g. \'tcp port 443\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" jobs' -l 'jobs' -d 'Worker threads following TCP flows, 1 to 64 (default: one per core). Standard input uses one.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" memory-limit' -l 'memory-limit' -d 'Memory for the whole run, all workers together: flows, buffers, records, remembered sessions, statistics. Bytes, or a number with K, M or G (default 256M, at least 64M). Past a stage\'s part, the oldest or least recently active holder gives way, and what was dropped is counted.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report"' -l 'keylog' -d 'A key log in the NSS format (what SSLKEYLOGFILE and openssl s_client -keylogfile write): the TLS 1.3 connections it names are read through the server\'s encrypted records, for the certificate, the tickets and early data. Repeatable. As sensitive as a private key; no secret is printed or recorded.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" from' -l 'from' -d 'Read saved handshake records (handshakes --format jsonl or json; .gz; "-" for standard input) instead of captures. Further file arguments are record files too.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" since' -l 'since' -d 'Only connections from this time on: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" until' -l 'until' -d 'Only connections before this time: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" server' -l 'server' -d 'Only this server: ADDRESS, or ADDRESS:PORT ([IPv6]:PORT).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" client' -l 'client' -d 'Only this client address.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" sni' -l 'sni' -d 'Only connections with this server name (SNI).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" session-horizon' -l 'session-horizon' -d 'Forget issued sessions older than this many seconds.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" q quiet' -s 'q' -l 'quiet' -d 'No summary on standard error.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" format' -l 'format' -d 'Output format: text, json.' -rfka 'text json'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" age-buckets' -l 'age-buckets' -d 'Upper edges of the session-age buckets in seconds, comma-separated.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" pairs' -l 'pairs' -d 'List each client\'s sequence of connections per service (always in JSON).'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" o output' -s 'o' -l 'output' -d 'Write the report to this file instead of standard output.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" html' -l 'html' -d 'Also write the report as one self-contained HTML page with charts.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'html\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" color' -l 'color' -d 'Colour in the text report: auto (on a terminal, unless NO_COLOR is set), always, never.' -rfka 'auto always never'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" version' -l 'version' -d 'Show the version.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse report" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_positional "tlsreuse handshakes" -ge 1' -F
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" bpf' -l 'bpf' -d 'Only packets matching this libpcap filter expression, e.g. \'tcp port 443\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" jobs' -l 'jobs' -d 'Worker threads following TCP flows, 1 to 64 (default: one per core). Standard input uses one.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" memory-limit' -l 'memory-limit' -d 'Memory for the whole run, all workers together: flows, buffers, records, remembered sessions, statistics. Bytes, or a number with K, M or G (default 256M, at least 64M). Past a stage\'s part, the oldest or least recently active holder gives way, and what was dropped is counted.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes"' -l 'keylog' -d 'A key log in the NSS format (what SSLKEYLOGFILE and openssl s_client -keylogfile write): the TLS 1.3 connections it names are read through the server\'s encrypted records, for the certificate, the tickets and early data. Repeatable. As sensitive as a private key; no secret is printed or recorded.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" from' -l 'from' -d 'Read saved handshake records (handshakes --format jsonl or json; .gz; "-" for standard input) instead of captures. Further file arguments are record files too.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" since' -l 'since' -d 'Only connections from this time on: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" until' -l 'until' -d 'Only connections before this time: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" server' -l 'server' -d 'Only this server: ADDRESS, or ADDRESS:PORT ([IPv6]:PORT).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" client' -l 'client' -d 'Only this client address.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" sni' -l 'sni' -d 'Only connections with this server name (SNI).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" session-horizon' -l 'session-horizon' -d 'Forget issued sessions older than this many seconds.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" q quiet' -s 'q' -l 'quiet' -d 'No summary on standard error.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" format' -l 'format' -d 'Output format: text, jsonl, json, csv, zeek.' -rfka 'text jsonl json csv zeek'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" o output' -s 'o' -l 'output' -d 'Write records to this file instead of standard output.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" version' -l 'version' -d 'Show the version.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse handshakes" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" i' -s 'i' -d 'Interface to capture on; "any" for all.' -rfka '(ls /sys/class/net 2>/dev/null; echo any)'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" bpf' -l 'bpf' -d 'libpcap filter expression, applied in the kernel.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" interval' -l 'interval' -d 'Seconds between running summaries (text: on standard output; other formats: on standard error). 0 turns them off. Default: 10 in text, 0 otherwise.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" duration' -l 'duration' -d 'Stop after this many seconds.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" count' -l 'count' -d 'Stop after this many TLS connections.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" w' -s 'w' -d 'Also write the captured packets to this pcap file (made as the --user, never through a symbolic link).' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live"' -l 'keylog' -d 'A key log that a client is writing (SSLKEYLOGFILE, openssl s_client -keylogfile), read as it grows: the TLS 1.3 connections it names are read through the server\'s encrypted records. Opened before privileges are dropped; packets wait a second before they are parsed, for the client to write its secrets. Repeatable. As sensitive as a private key; no secret is printed or recorded.' -rF
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" user' -l 'user' -d 'Started as root: the user to run as once the interface is open, before any packet is parsed (default: tlsreuse if that user exists, else nobody).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" format' -l 'format' -d 'Output: text (summaries and report), json (final report), or each record as it is decided: jsonl, csv, zeek.' -rfka 'text json jsonl csv zeek'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" pairs' -l 'pairs' -d 'List each client\'s sequence of connections per service in the final text report.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" color' -l 'color' -d 'Colour in the final text report: auto (on a terminal, unless NO_COLOR is set), always, never.' -rfka 'auto always never'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" memory-limit' -l 'memory-limit' -d 'Memory for the whole run, all workers together: flows, buffers, records, remembered sessions, statistics. Bytes, or a number with K, M or G (default 256M, at least 64M). Past a stage\'s part, the oldest or least recently active holder gives way, and what was dropped is counted.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" since' -l 'since' -d 'Only connections from this time on: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" until' -l 'until' -d 'Only connections before this time: epoch seconds or UTC \'YYYY-MM-DD HH:MM:SS\'.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" server' -l 'server' -d 'Only this server: ADDRESS, or ADDRESS:PORT ([IPv6]:PORT).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" client' -l 'client' -d 'Only this client address.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" sni' -l 'sni' -d 'Only connections with this server name (SNI).' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" session-horizon' -l 'session-horizon' -d 'Forget issued sessions older than this many seconds.' -rfka ''
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" q quiet' -s 'q' -l 'quiet' -d 'No summary on standard error.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" version' -l 'version' -d 'Show the version.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse live" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tlsreuse' -n '__tlsreuse_should_offer_completions_for_flags_or_options "tlsreuse help" version' -l 'version' -d 'Show the version.'
