# Sourced by the bench scripts: the benchmark chains, built once per
# parameter set under $work and shared between scripts.
# Needs: root, work, small.

scale() { if [ "$small" = 1 ]; then echo $(($1 / 8)); else echo "$1"; fi; }

chain() {  # chain NAME VMIB DEPTH PCT [BASE]: build once, print the top
  local dir=$work/$1-${2}m-d$3-p$4${5:+-$5}
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    bash "$root/bench/make-chain.sh" "$dir" "$2" "$3" "$4" 1 "${5:-}" >/dev/null
    touch "$dir/.done"
  fi
  echo "$dir/layer-$(($3 - 1)).qcow2"
}
