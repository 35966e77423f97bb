#!/usr/bin/env bash
# A build without MPI (cmake -DELM_MPI=OFF, or Open MPI absent) started under an MPI launcher
# (issue 18): `elm train` refuses, saying it is not an MPI build, exits 2 and writes nothing,
# instead of training N copies of the run into one folder. The launcher is stood in for by its
# environment (OMPI_COMM_WORLD_SIZE, or PMI_SIZE as srun sets it). CMake registers it only in
# builds without MPI (tests/mpi/ cover MPI builds); run by hand against an MPI build it skips.
set -u
ELM=${ELM_CLI:-build/elm}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
if "$ELM" train --help | grep -q "is an MPI build"; then
    echo "SKIP: this elm is an MPI build (tests/mpi/*.sh test it under mpirun)"; exit 77
fi
"$ELM" train --help | grep -q "is not an MPI build" && ok || bad "--help does not say it is not an MPI build"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for var in OMPI_COMM_WORLD_SIZE PMI_SIZE; do
    env "$var=3" "$ELM" train neuronio --data "$T/none" --out "$T/run" 2>"$T/err"; rc=$?
    [ $rc = 2 ] && grep -q "not an MPI build, but it was started under an MPI launcher ($var=3)" "$T/err" \
        && ok || { bad "$var=3: rc $rc: $(cat "$T/err")"; }
    [ ! -e "$T/run" ] && ok || bad "$var=3: the run folder was created"
done
# One process under a launcher is a plain run (here: the data error, not the MPI one).
OMPI_COMM_WORLD_SIZE=1 "$ELM" train neuronio --data "$T/none" --out "$T/run1" 2>"$T/err1"
grep -q "MPI" "$T/err1" && bad "a one-process job was refused: $(cat "$T/err1")" || ok
finish
