"""Run a command and print its peak resident memory in KiB (getrusage of the finished child).

usage: peak_rss.py [--report] [--limit-mib N] COMMAND...
Plain: the command must succeed; prints the peak only.
--report: prints the command's stdout and stderr, then `exit CODE` and `peak_kib N`, whatever the
command's exit code. --limit-mib caps the child's address space, so a run that would allocate
without bound fails fast instead of exhausting the machine.
"""

import resource
import subprocess
import sys

args = sys.argv[1:]
report = False
limit = None
while args and args[0].startswith("--"):
    flag = args.pop(0)
    if flag == "--report":
        report = True
    elif flag == "--limit-mib":
        limit = int(args.pop(0)) << 20


def cap():
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


if report:
    done = subprocess.run(args, capture_output=True, text=True, preexec_fn=cap)
    print(done.stdout, end="")
    print(done.stderr, end="")
    print(f"exit {done.returncode}")
else:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, preexec_fn=cap)
print(("peak_kib " if report else "") + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
