#!/usr/bin/env bash
# expect_job_failure.sh REGEX COMMAND...: passes when COMMAND (an mpirun job)
# exits non-zero within 30 s, not by hanging, and its output matches REGEX
# (grep -E): the failing rank's message reached the user.
set -u
regex=$1
shift
output=$(timeout 30 "$@" 2>&1)
rc=$?
printf '%s\n' "$output"
echo "expect_job_failure: exit code $rc"
if ((rc == 0)); then echo "FAIL: the job exited 0, expected a failure"; exit 1; fi
if ((rc == 124)); then echo "FAIL: the job hung (killed after 30 s)"; exit 1; fi
if ! grep -Eq -- "$regex" <<<"$output"; then echo "FAIL: no line matches: $regex"; exit 1; fi
echo "PASS: the job failed with the expected message"
