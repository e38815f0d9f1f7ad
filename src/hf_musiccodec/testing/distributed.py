"""Launch real multi-process (CPU, gloo) runs from tests: ``accelerate launch`` with its own port.

Runs through ``sys.executable -m accelerate.commands.launch`` rather than the ``accelerate``
console script (whose shebang pins the interpreter of the folder it was installed in), and on a
free port rather than 29500, which a previous run's socket in TIME_WAIT can still hold.
"""

import socket
import sys


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch_command(script_and_args: list[str], num_processes: int = 2) -> list[str]:
    """The command line for ``accelerate launch`` of a script on ``num_processes`` CPU processes."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), *script_and_args]  # fmt: skip
