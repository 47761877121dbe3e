# bash completion for vigilctl(1): its commands, options, signal names, and the names of
# the jobs of the running vigild (from `vigilctl --json status`, with the -s/-c options
# already on the line, so the completion asks the same daemon the command will).
# Installed as /usr/share/bash-completion/completions/vigilctl; it needs neither jq nor
# the bash-completion library, so it also works when simply sourced.

# Prints the job names of the daemon that `vigilctl ARGS...` reaches, one per line.
_vigilctl_jobs() {
  # `status` exits 3 when a job is not running: its output counts all the same. The
  # timeout keeps a wedged daemon from hanging the shell.
  local -a cmd=("$@" --json --no-color status)
  if type -P timeout >/dev/null; then cmd=(timeout 2 "${cmd[@]}"); fi
  # --json prints one indented document: the status objects of the jobs, each with its
  # "name" member on a line of its own, four spaces in.
  "${cmd[@]}" 2>/dev/null </dev/null | sed -n 's/^    "name": "\([^"\\]*\)",\{0,1\}$/\1/p'
}

_vigilctl() {
  # The line up to the cursor, split on blanks: commands, options and job names never
  # need quoting. (COMP_WORDS would split job names such as getty@tty1 at the '@'.)
  local line=${COMP_LINE:0:COMP_POINT}
  local -a words
  read -r -a words <<<"$line"
  [[ $line == *[[:blank:]] || ${#words[@]} -eq 0 ]] && words+=("")
  local cur=${words[${#words[@]} - 1]}
  local prog=${words[0]/#\~/$HOME}

  local global_opts="-s --socket -c --config --json --no-color -h --help --version"
  local commands="status start stop restart signal logs events reload reopen-logs shutdown version help"
  local signals="HUP INT QUIT KILL USR1 USR2 TERM CONT STOP TSTP WINCH"

  # What comes before the word being completed: the -s/-c options to pass on, the
  # command, and the command's arguments so far.
  local -a conn=()
  local -a args=()
  local command="" prev="" word options_done=""
  local i
  for ((i = 1; i < ${#words[@]} - 1; i++)); do
    word=${words[i]}
    if [[ -z $options_done && ($prev == -s || $prev == --socket || $prev == -c || $prev == --config) ]]; then
      conn+=("$prev" "${word/#\~/$HOME}")
    elif [[ -z $options_done && ($prev == -n || $prev == --lines) ]]; then
      :
    elif [[ -z $options_done && $word == -- ]]; then
      options_done=1
    elif [[ -z $options_done && ($word == --socket=* || $word == --config=*) ]]; then
      conn+=("${word%%=*}" "${word#*=}")
    elif [[ -z $options_done && $word == -* ]]; then
      :
    elif [[ -z $command ]]; then
      command=$word
    else
      args+=("$word")
    fi
    prev=$word
  done
  [[ -n $options_done ]] && prev=""

  local -a reply=()
  local filenames=""
  case $prev in
  -s | --socket | -c | --config)
    mapfile -t reply < <(compgen -f -- "$cur")
    filenames=1
    ;;
  -n | --lines)
    return 0
    ;;
  esac

  if [[ -z $filenames ]]; then
    if [[ -z $options_done && ($cur == --socket=* || $cur == --config=*) ]]; then
      mapfile -t reply < <(compgen -P "${cur%%=*}=" -f -- "${cur#*=}")
      filenames=1
    elif [[ -z $options_done && $cur == -* ]]; then
      local opts=$global_opts
      case $command in
      start | stop | restart) opts+=" --no-wait" ;;
      logs) opts+=" -f --follow -n --lines --stderr" ;;
      esac
      mapfile -t reply < <(compgen -W "$opts" -- "$cur")
    elif [[ -z $command ]]; then
      mapfile -t reply < <(compgen -W "$commands" -- "$cur")
    else
      local jobs=""
      case $command in
      status)
        jobs=$(_vigilctl_jobs "$prog" "${conn[@]}")
        ;;
      start | stop | restart)
        jobs="all $(_vigilctl_jobs "$prog" "${conn[@]}")"
        ;;
      signal)
        if [[ ${#args[@]} -eq 0 ]]; then
          mapfile -t reply < <(compgen -W "$signals" -- "${cur^^}")
        else
          jobs=$(_vigilctl_jobs "$prog" "${conn[@]}")
        fi
        ;;
      logs)
        [[ ${#args[@]} -eq 0 ]] && jobs=$(_vigilctl_jobs "$prog" "${conn[@]}")
        ;;
      help)
        [[ ${#args[@]} -eq 0 ]] && mapfile -t reply < <(compgen -W "${commands% help}" -- "$cur")
        ;;
      esac
      if [[ -n $jobs ]]; then
        # A name already on the line is not offered again.
        local name
        for name in $jobs; do
          [[ $name == "$cur"* ]] || continue
          for word in "${args[@]}"; do [[ $word == "$name" ]] && continue 2; done
          reply+=("$name")
        done
      fi
    fi
  fi

  # Bash completes only the part of the word after its last COMP_WORDBREAKS character
  # (':', '=' and '@' by default): drop what comes before it from every reply.
  local pre=""
  for ((i = ${#cur} - 1; i >= 0; i--)); do
    if [[ $COMP_WORDBREAKS == *"${cur:i:1}"* ]]; then
      pre=${cur:0:i+1}
      break
    fi
  done
  COMPREPLY=()
  for word in "${reply[@]}"; do COMPREPLY+=("${word#"$pre"}"); done
  if [[ -n $filenames ]]; then compopt -o filenames 2>/dev/null; fi
  return 0
}

complete -F _vigilctl vigilctl
