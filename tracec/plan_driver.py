"""The POSIX sh driver that `tracec plan` writes (run.sh): a template whose @@NAME@@
fields tracec/plan.py fills from the artifact's manifest. See docs/deploy.md."""

TEMPLATE = r"""#!/bin/sh
# The learner of @@MODEL@@ without Python: IREE's iree-run-module runs the artifact's
# entry points over chunks of a sequence and this script carries the values from one
# call to the next. Written by `tracec plan` (@@ALGORITHM@@, target @@TARGET@@);
# docs/deploy.md in tracec's repository describes it.
#
#   sh run.sh init CKPT                                  a fresh learner in CKPT
#   sh run.sh train [-c N] [-m MASKS.npy] CKPT XS.npy TARGETS.npy [OUTDIR]
#   sh run.sh forward [-c N] CKPT XS.npy OUTDIR
#
# CKPT is a checkpoint directory (checkpoint.json and v0.npy, v1.npy, ...), the format
# tracec.runtime's Learner.load_checkpoint reads; a CKPT that does not exist yet starts
# as a fresh learner. train runs train_sequence: XS.npy holds the inputs [T, @@X_SHOW@@]
# (@@X_DESCR@@), TARGETS.npy the targets [T, @@Y_SHOW@@] (@@Y_DESCR@@), MASKS.npy the
# loss weights [T] (<f4, default all 1); it writes OUTDIR/losses.npy [T] when OUTDIR is
# given. forward runs forward_sequence (the state advances, parameters stay) and writes
# the outputs to OUTDIR (@@OUT_FILES@@). Both go N steps per call (-c, default $CHUNK
# or @@CHUNK@@) and replace CKPT's values only once every chunk has run and the new
# values are finite; a failed run leaves CKPT as it was.
#
# Environment: IREE_RUN_MODULE, the iree-run-module command (default: iree-run-module
# from PATH; it may carry words before the program, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu
# /opt/iree/iree-run-module"); IREE_DEVICE, the IREE device (default @@DEVICE@@).
# Needs a POSIX sh and dd, od, grep, awk, tr, wc, cat, cp, mv, rm, mkdir, dirname.
set -eu

PLAN=$(cd "$(dirname "$0")" && pwd)
MODULE=$PLAN/model.vmfb
RUN=${IREE_RUN_MODULE:-iree-run-module}
DEVICE=${IREE_DEVICE:-@@DEVICE@@}
CHUNK=${CHUNK:-@@CHUNK@@}

# -- the artifact's calling convention (from its manifest) ------------------------
# Carried values are CKPT's files v<i>.npy, named here by their index.
TRAIN=@@TRAIN@@
TRAIN_ARGS="@@TRAIN_ARGS@@"
TRAIN_RESULTS="@@TRAIN_RESULTS@@"
FWD_ARGS="@@FWD_ARGS@@"
FWD_RESULTS="@@FWD_RESULTS@@"
INIT_PARAMS="@@INIT_PARAMS@@"
INIT_STATE="@@INIT_STATE@@"
FLOAT_VALUES="@@FLOAT_VALUES@@"
# inputs: npy descr, shape after T (as numpy writes it, no spaces), IREE shape-and-type
# after T, bytes per step
X_DESCR='@@X_DESCR@@' X_TAIL='@@X_TAIL@@' X_TYPE='@@X_TYPE@@' X_ROW=@@X_ROW@@
Y_DESCR='@@Y_DESCR@@' Y_TAIL='@@Y_TAIL@@' Y_TYPE='@@Y_TYPE@@' Y_ROW=@@Y_ROW@@
# outputs of forward_sequence: file name, npy descr, shape after T as numpy writes it
OUTPUTS="@@OUTPUTS@@"
@@OUTPUT_SPECS@@
STEPS_KEY='"steps_since_reset": '

die() { echo "run.sh: error: $*" >&2; exit 1; }

usage() {
  echo "usage: sh run.sh init CKPT" >&2
  echo "       sh run.sh train [-c N] [-m MASKS.npy] CKPT XS.npy TARGETS.npy [OUTDIR]" >&2
  echo "       sh run.sh forward [-c N] CKPT XS.npy OUTDIR" >&2
  exit 2
}

# npy_read FILE: NPY_OFF (data offset), NPY_DESCR, NPY_SHAPE ("T,32,40", "T" for 1-d)
npy_read() {
  [ -f "$1" ] || die "$1: no such file"
  _nf=$1
  # shellcheck disable=SC2046
  set -- $(od -An -tu1 -N12 "$_nf")
  [ $# -eq 12 ] && [ "$1 $2 $3 $4 $5 $6" = "147 78 85 77 80 89" ] \
    || die "$_nf is not a .npy file"
  case $7 in
    1) _pre=10; _hl=$(( $9 + 256 * ${10} )) ;;
    2|3) _pre=12; _hl=$(( $9 + 256 * ${10} + 65536 * ${11} + 16777216 * ${12} )) ;;
    *) die "$_nf: .npy version $7 is not supported" ;;
  esac
  _hdr=$({ dd bs="$_pre" count=1 of="$WORK/skipped"; dd bs="$_hl" count=1; } <"$_nf" 2>"$WORK/dd.log")
  case $_hdr in
    *"'descr': '"*"'fortran_order': False"*"'shape': ("*) ;;
    *"'fortran_order': True"*) die "$_nf is stored in Fortran order; save it in C order" ;;
    *) die "$_nf has a .npy header this script cannot read" ;;
  esac
  NPY_OFF=$(( _pre + _hl ))
  NPY_DESCR=${_hdr#*"'descr': '"}
  NPY_DESCR=${NPY_DESCR%%"'"*}
  NPY_SHAPE=${_hdr#*"'shape': ("}
  NPY_SHAPE=$(printf '%s' "${NPY_SHAPE%%")"*}" | tr -d ' ')
  NPY_SHAPE=${NPY_SHAPE%,}
}

# check_steps FILE WHAT DESCR TAIL ROW: the file holds [T, TAIL] of DESCR; sets IN_T, IN_OFF
check_steps() {
  npy_read "$1"
  [ "$NPY_DESCR" = "$3" ] || die "$2 $1 has dtype $NPY_DESCR, the model needs $3"
  IN_T=${NPY_SHAPE%%,*}
  case $IN_T in ''|*[!0-9]*) die "$2 $1 has shape ($NPY_SHAPE), expected (T,$4)" ;; esac
  [ "$NPY_SHAPE" = "$IN_T${4:+,$4}" ] || die "$2 $1 has shape ($NPY_SHAPE), expected (T${4:+,$4})"
  _size=$(wc -c <"$1")
  [ "$_size" -ge $(( NPY_OFF + IN_T * $5 )) ] || die "$2 $1 is truncated"
  IN_OFF=$NPY_OFF
}

# finite FILE: no NaN or Inf among its float32 values
finite() {
  npy_read "$1"
  ! od -An -v -tf4 -j "$NPY_OFF" "$1" | grep -qi -e nan -e inf
}

# slice FILE OFF ROW T0 COUNT OUT: the raw bytes of steps T0 .. T0+COUNT-1
slice() {
  { dd bs="$2" count=1 of="$WORK/skipped"; dd bs="$3" skip="$4" count="$5"; } <"$1" >"$6" 2>"$WORK/dd.log"
  [ "$(wc -c <"$6")" -eq $(( $3 * $5 )) ] || die "cannot read steps $4.. of $1"
}

# npy_cat OUT DESCR TAIL TOTAL FILE...: the arrays of FILE... joined along their first axis
npy_cat() {
  _out=$1 _descr=$2 _tail=$3 _total=$4
  shift 4
  _shape="($_total,)"
  _rest=$_tail
  while [ -n "$_rest" ]; do
    case $_rest in
      *,*) _shape="${_shape%)} ${_rest%%,*},)"; _rest=${_rest#*,} ;;
      *) _shape="${_shape%)} $_rest,)"; _rest= ;;
    esac
  done
  [ -z "$_tail" ] || _shape="${_shape%,)})"
  _dict="{'descr': '$_descr', 'fortran_order': False, 'shape': $_shape, }"
  _pad=$(( (64 - (10 + ${#_dict} + 1) % 64) % 64 ))
  _hl=$(( ${#_dict} + _pad + 1 ))
  {
    printf '\223NUMPY\001\000'
    printf "\\$(printf %03o $(( _hl % 256 )))\\$(printf %03o $(( _hl / 256 )))"
    printf '%s' "$_dict"
    [ "$_pad" -eq 0 ] || printf "%${_pad}s" ''
    printf '\n'
    for _f in "$@"; do
      npy_read "$_f"
      { dd bs="$NPY_OFF" count=1 of="$WORK/skipped" 2>"$WORK/dd.log"; cat; } <"$_f"
    done
  } >"$_out.tmp"
  mv "$_out.tmp" "$_out"
}

# run_module ENTRY ARGS...: iree-run-module, its log shown only when it fails; on the
# CPU drivers the caching allocator reuses a step's buffers for the next step of the call
run_module() {
  _entry=$1
  shift
  case $DEVICE in
    local-*) _alloc=--device_allocator=caching ;;
    *) _alloc= ;;
  esac
  # shellcheck disable=SC2086
  if ! $RUN "--module=$MODULE" "--device=$DEVICE" $_alloc "--function=$_entry" "$@" \
      >"$WORK/log" 2>&1; then
    cat "$WORK/log" >&2
    die "iree-run-module failed on $_entry (command: $RUN, device: $DEVICE)"
  fi
}


# new_checkpoint DIR: a fresh learner (the plan's init/, completed on this device)
new_checkpoint() {
  _dir=$1
  for _f in "$PLAN"/init/v*.npy; do if [ -f "$_f" ]; then cp "$_f" "$_dir/"; fi; done
  for _group in params state; do
    if [ "$_group" = params ]; then _vs=$INIT_PARAMS _entry=init_params
    else _vs=$INIT_STATE _entry=init_state; fi
    _missing=no
    for _v in $_vs; do [ -f "$_dir/$_v.npy" ] || _missing=yes; done
    if [ "$_missing" = yes ]; then
      set --
      for _v in $_vs; do set -- "$@" "--output=@$_dir/$_v.npy"; done
      run_module "$_entry" "$@"
    fi
  done
  cp "$PLAN/init/checkpoint.json" "$WORK/checkpoint.json"
  mv "$WORK/checkpoint.json" "$_dir/checkpoint.json"
}

# begin DIR: CKPT and its work folder CKPT/.run (removed when the script ends); a DIR
# that does not exist yet is created (and removed again if nothing was saved in it)
begin() {
  CKPT=$1
  [ ! -e "$CKPT" ] || [ -d "$CKPT" ] || die "$CKPT is not a directory"
  [ -e "$CKPT" ] || CREATED=yes
  WORK=$CKPT/.run
  mkdir -p "$WORK"
  rm -rf "$WORK"/*
  trap finish EXIT
  trap 'exit 130' INT TERM
}

finish() {
  rm -rf "$WORK"
  if [ "$CREATED" = yes ] && [ ! -f "$CKPT/checkpoint.json" ]; then rm -rf "$CKPT"; fi
}

# open_checkpoint: CKPT's values, a fresh learner's if it has none yet
open_checkpoint() {
  if [ ! -f "$CKPT/checkpoint.json" ]; then
    for _f in "$CKPT"/v*.npy; do
      [ ! -f "$_f" ] || die "$CKPT has no checkpoint.json: it is not a complete checkpoint (an earlier run stopped while saving?)"
    done
    new_checkpoint "$CKPT"
  fi
  mkdir -p "$WORK/cur"
}

# commit STEPS: this run's values replace CKPT's, then checkpoint.json counts STEPS more
commit() {
  for _v in $FLOAT_VALUES; do
    if [ -f "$WORK/cur/$_v.npy" ] && ! finite "$WORK/cur/$_v.npy"; then
      die "the run produced NaN or Inf (in $_v.npy); $CKPT is unchanged"
    fi
  done
  _json=$(cat "$CKPT/checkpoint.json")
  _steps=${_json##*"$STEPS_KEY"}
  _steps=${_steps%%[!0-9]*}
  [ -n "$_steps" ] || die "$CKPT/checkpoint.json has no step count"
  _head=${_json%"$STEPS_KEY"*}
  printf '%s%s%s}\n' "$_head" "$STEPS_KEY" $(( _steps + $1 )) >"$WORK/checkpoint.json"
  rm -f "$CKPT/checkpoint.json"
  for _f in "$WORK"/cur/*.npy; do
    if [ -f "$_f" ]; then mv "$WORK"/cur/*.npy "$CKPT/"; fi
    break
  done
  mv "$WORK/checkpoint.json" "$CKPT/checkpoint.json"
}

# advance: the values this chunk wrote become the current ones
advance() {
  rm -rf "$WORK/cur"
  mv "$WORK/next" "$WORK/cur"
}

cmd_train() {
  [ "$TRAIN" = yes ] || die "$MODULE was compiled with --algorithm @@ALGORITHM@@: it does not learn"
  [ $# -eq 3 ] || [ $# -eq 4 ] || usage
  XS=$2 YS=$3
  begin "$1"
  check_steps "$2" inputs "$X_DESCR" "$X_TAIL" "$X_ROW"
  T=$IN_T X_OFF=$IN_OFF
  check_steps "$3" targets "$Y_DESCR" "$Y_TAIL" "$Y_ROW"
  [ "$IN_T" -eq "$T" ] || die "targets $3 have $IN_T steps, inputs $2 have $T"
  Y_OFF=$IN_OFF
  [ "$X_DESCR" != '<f4' ] || finite "$2" || die "inputs $2 contain NaN or Inf"
  [ "$Y_DESCR" != '<f4' ] || finite "$3" || die "targets $3 contain NaN or Inf"
  if [ -n "$MASKS" ]; then
    check_steps "$MASKS" masks '<f4' '' 4
    [ "$IN_T" -eq "$T" ] || die "masks $MASKS have $IN_T steps, inputs $2 have $T"
    M_OFF=$IN_OFF
    finite "$MASKS" || die "masks $MASKS contain NaN or Inf"
    od -An -v -tf4 -j "$M_OFF" "$MASKS" \
      | awk '{ for (i = 1; i <= NF; i++) if ($i + 0 < 0 || $i + 0 > 1) exit 1 }' \
      || die "masks $MASKS must be in [0, 1]"
  fi
  open_checkpoint
  _t0=0 _i=0
  while [ "$_t0" -lt "$T" ]; do
    _c=$(( T - _t0 < CHUNK ? T - _t0 : CHUNK ))
    slice "$XS" "$X_OFF" "$X_ROW" "$_t0" "$_c" "$WORK/xs.bin"
    slice "$YS" "$Y_OFF" "$Y_ROW" "$_t0" "$_c" "$WORK/ys.bin"
    if [ -n "$MASKS" ]; then
      slice "$MASKS" "$M_OFF" 4 "$_t0" "$_c" "$WORK/ms.bin"
      _mask="--input=${_c}xf32=@$WORK/ms.bin"
    else
      _mask="--input=${_c}xf32=1"
    fi
    mkdir -p "$WORK/next"
    set --
    for _v in $TRAIN_ARGS; do
      if [ -f "$WORK/cur/$_v.npy" ]; then set -- "$@" "--input=@$WORK/cur/$_v.npy"
      else set -- "$@" "--input=@$CKPT/$_v.npy"; fi
    done
    set -- "$@" "--input=${_c}x${X_TYPE}=@$WORK/xs.bin"
    set -- "$@" "--input=${_c}x${Y_TYPE}=@$WORK/ys.bin"
    set -- "$@" "$_mask"
    for _v in $TRAIN_RESULTS; do set -- "$@" "--output=@$WORK/next/$_v.npy"; done
    set -- "$@" "--output=@$WORK/losses.$_i.npy"
    run_module train_sequence "$@"
    advance
    _t0=$(( _t0 + _c )) _i=$(( _i + 1 ))
  done
  if [ -n "$OUTDIR" ]; then
    mkdir -p "$OUTDIR"
    set --
    _j=0
    while [ "$_j" -lt "$_i" ]; do set -- "$@" "$WORK/losses.$_j.npy"; _j=$(( _j + 1 )); done
    npy_cat "$OUTDIR/losses.npy" '<f4' '' "$T" "$@"
  fi
  commit "$T"
}

cmd_forward() {
  [ $# -eq 3 ] || usage
  XS=$2
  begin "$1"
  check_steps "$2" inputs "$X_DESCR" "$X_TAIL" "$X_ROW"
  T=$IN_T X_OFF=$IN_OFF
  [ "$X_DESCR" != '<f4' ] || finite "$2" || die "inputs $2 contain NaN or Inf"
  OUTDIR=$3
  open_checkpoint
  _t0=0 _i=0
  while [ "$_t0" -lt "$T" ]; do
    _c=$(( T - _t0 < CHUNK ? T - _t0 : CHUNK ))
    slice "$XS" "$X_OFF" "$X_ROW" "$_t0" "$_c" "$WORK/xs.bin"
    mkdir -p "$WORK/next"
    set --
    for _v in $FWD_ARGS; do
      if [ -f "$WORK/cur/$_v.npy" ]; then set -- "$@" "--input=@$WORK/cur/$_v.npy"
      else set -- "$@" "--input=@$CKPT/$_v.npy"; fi
    done
    set -- "$@" "--input=${_c}x${X_TYPE}=@$WORK/xs.bin"
    for _v in $FWD_RESULTS; do set -- "$@" "--output=@$WORK/next/$_v.npy"; done
    for _o in $OUTPUTS; do set -- "$@" "--output=@$WORK/$_o.$_i.npy"; done
    run_module forward_sequence "$@"
    advance
    _t0=$(( _t0 + _c )) _i=$(( _i + 1 ))
  done
  mkdir -p "$OUTDIR"
  for _o in $OUTPUTS; do
    eval "_descr=\$DESCR_$_o _tail=\$TAIL_$_o"
    set --
    _j=0
    while [ "$_j" -lt "$_i" ]; do set -- "$@" "$WORK/$_o.$_j.npy"; _j=$(( _j + 1 )); done
    npy_cat "$OUTDIR/$_o.npy" "$_descr" "$_tail" "$T" "$@"
  done
  commit "$T"
}

[ $# -ge 1 ] || usage
COMMAND=$1
shift
MASKS=
OUTDIR=
CREATED=no
WORK=
while getopts c:m: _opt; do
  case $_opt in
    c) CHUNK=$OPTARG ;;
    m) MASKS=$OPTARG ;;
    *) usage ;;
  esac
done
shift $(( OPTIND - 1 ))
case $CHUNK in ''|*[!0-9]*|0) die "the chunk length must be a positive integer, got '$CHUNK'" ;; esac
[ -f "$MODULE" ] || die "$MODULE is missing (run.sh belongs in the folder tracec plan wrote)"

case $COMMAND in
  init)
    [ $# -eq 1 ] || usage
    [ ! -e "$1" ] || die "$1 exists already"
    begin "$1"
    new_checkpoint "$1"
    ;;
  train)
    if [ $# -ge 4 ]; then OUTDIR=$4; fi
    [ -z "$MASKS" ] || [ "$TRAIN" = yes ] || die "-m: $MODULE does not learn"
    cmd_train "$@"
    ;;
  forward)
    [ -z "$MASKS" ] || die "-m is for train"
    cmd_forward "$@"
    ;;
  *) usage ;;
esac
"""
