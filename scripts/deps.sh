# scripts/deps.sh — sourced by scripts/run and scripts/test: installs the
# Debian packages the project needs, when they are missing.
#
# As root it runs apt-get; as anyone else it prints the exact command and
# stops, rather than asking for a password half way through.

# need_packages PKG... — installs whichever of PKG are not installed yet.
need_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "simplecqrs needs these Debian packages: ${missing[*]}" >&2
		echo "Install them with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "Installing ${missing[*]} ..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# To build and run the shell.
BUILD_PACKAGES=(gcc libc6-dev meson ninja-build pkg-config libreadline-dev)
# Optional stores: built when their libraries are there.
STORE_PACKAGES=(libsqlite3-dev libpq-dev)
# A throwaway PostgreSQL server for the postgres tests and benchmark
# (initdb and pg_ctl, pg_virtualenv, psql).
PG_SERVER_PACKAGES=(postgresql)
# To run every test: unit tests, sanitizers under gcc and clang, valgrind,
# the pty-driven interactive tests, the man page check and the order test
# (strace).
TEST_PACKAGES=(check python3 clang libclang-rt-14-dev valgrind man-db groff-base
	cppcheck clang-tidy strace)
