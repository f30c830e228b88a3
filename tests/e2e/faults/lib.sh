# Helpers for the fault scripts (sourced after ../lib.sh).

# sources_digest FILE...: one checksum over the given files' bytes and
# metadata that a reader could change (size, mtime): "the source untouched".
sources_digest() { { sha256sum "$@"; stat -c '%n %s %Y' "$@"; } | sha256sum; }

# temporaries DIR: the engine's temporaries in DIR, one per line.
temporaries() { find "$1" -maxdepth 1 -name '.*.clonekit-??????' -printf '%f\n'; }
export -f temporaries
