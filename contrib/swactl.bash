# bash completion for swactl(8); installed by make install as
# PREFIX/share/bash-completion/completions/swactl.

# The checkpoint names of the live tree at $1, from swactl list --json.
_swactl_names()
{
	swactl list "$1" --json 2>/dev/null |
		grep -o '"name":"[A-Za-z0-9._-]*"' | cut -d'"' -f4
}

_swactl()
{
	local cur prev cmd
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=${COMP_WORDS[1]}

	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W 'checkpoint mount release list status
			history events sync save verify restore help --help
			--version' -- "$cur"))
		return
	fi
	case $prev in
	--retain) COMPREPLY=($(compgen -W 'saved all' -- "$cur")); return ;;
	--wait | --boundary-wait) COMPREPLY=($(compgen -W 'nomax' -- "$cur")); return ;;
	--since | --others-wait | --keep-for | -n) return ;;
	--name | --sync | --count | --pre | --post) return ;;
	--path | --to) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--compress) COMPREPLY=($(compgen -W 'zstd lz4 none' -- "$cur")); return ;;
	--copies) COMPREPLY=($(compgen -W '1 2' -- "$cur")); return ;;
	--streams) return ;;
	--manifest) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	case $cmd in
	checkpoint)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--name --retain --keep --keep-for
				--boundary-wait --others-wait --wait --path --pre
				--post --sync --json --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	mount | release | status)
		if [ "$COMP_CWORD" -eq 3 ]; then
			COMPREPLY=($(compgen -W "$(_swactl_names "$prev")" -- "$cur"))
		elif [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--json --watch --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	list | history)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--json --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	events)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--follow --since --name -n --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	sync)
		if [ "$COMP_CWORD" -eq 2 ]; then
			COMPREPLY=($(compgen -W 'start end list' -- "$cur"))
		elif [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--count --wait --json --help' -- "$cur"))
		fi ;;
	save)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--name --retain --keep --keep-for
				--boundary-wait --wait --path --to --compress
				--streams --copies --dry-run --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi ;;
	verify)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--manifest --against --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	restore)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--to --dry-run --help' -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	help)
		COMPREPLY=($(compgen -W 'checkpoint mount release list status
			history events sync save verify restore' -- "$cur")) ;;
	esac
}
complete -F _swactl swactl
