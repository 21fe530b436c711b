"""What every benchmark prints beside its figures: the CPU (or GPU) it ran on, the threads and library versions.

Speed ratios depend on the machine (a trick tuned to one CPU's memory system did not carry over to another), so a
figure is only meaningful next to the machine that produced it.
"""

import platform
import subprocess

import torch
import transformers


def cpu_model() -> str:
    """lscpu's "Model name" (e.g. "AMD EPYC 9B14"), or what platform knows where lscpu is missing."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """One line naming the machine: CPU model, torch threads, GPU if any, torch and transformers versions."""
    device = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"machine: CPU {cpu_model()}, {torch.get_num_threads()} torch threads{device}; "
        f"torch {torch.__version__}, transformers {transformers.__version__}"
    )
