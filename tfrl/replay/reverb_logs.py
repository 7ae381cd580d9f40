"""Reverb's routine log lines kept off the console; its warnings and errors still show.
(Also TF's three lines at the first XLA compilation, `XLA_ROUTINE`.)

Reverb (0.14) logs through its own minimal logger
(reverb/cc/platform/default/logging.h): every REVERB_LOG line, INFO and ERROR
alike, goes to std::clog as "[reverb/cc/<file>:<line>] <message>", with no
severity in the text and no flag, environment variable or API that sets its
verbosity (TF_CPP_MIN_LOG_LEVEL, GLOG_minloglevel and absl's flags do not
reach it). Nor can tfrl's use of it avoid the lines: an embedded server logs
its start and stop, and every sampler of an in-process table logs that it
bypasses gRPC. So the handle is the process's native stderr: `quiet()` sends
file descriptor 2 through a small filter process that drops the known routine
lines (`ROUTINE`) and passes everything else on unchanged and at once. Python's
own `sys.stderr` (tracebacks, warnings, progress bars) keeps writing to the
console directly when it is the process's stderr.

The filter is a process, not a thread, so that what a dying process wrote last
(a Reverb CHECK failure before abort, anything before a SIGKILL) still reaches
the console. Set TFRL_REVERB_LOGS=1 to leave stderr alone.

This file runs as that filter (`python -I -S reverb_logs.py`): the standard
library only.
"""

import io
import os
import re
import select
import signal
import subprocess
import sys

# Messages Reverb logs in normal operation, matched whole after the
# "[reverb/cc/<file>:<line>] " prefix. Anything else Reverb says shows.
ROUTINE = (
    r"Started replay server on port \d+",
    r"Shutting down replay server",
    # every in-process sample / dataset (logged at the 1st, 2nd, 4th, 8th, ... sampler)
    r"Sampler and server are owned by the same process \(\d+\) so Table \S+ is accessed "
    r"directly without gRPC\.",
    # a distributed actor ahead of the learner: the table's rate limiter holds
    # its inserts by design, and the actor flushes every chunk it collects
    r"The number of pending items is alarmingly high, did you forget to call Flush\? .*",
    # every checkpoint of the tables (a run's checkpoint, the server role's clock)
    r"Stored checkpoint to .*",
    # the server's checkpointer at start, and restoring tables on resume
    r"Initializing TFRecordCheckpointer in .*",
    r"Loading latest checkpoint from .*",
    r"Loading checkpoint from .*",
    r"Loading and verifying metadata of the checkpointed tables\.",
    r"Metadata for table '.*' was successfully loaded and verified\.",
    r"Successfully loaded and verified metadata for all .*",
    r"Still reading compressed trajectory data\. .*",
    r"Completed reading compressed trajectory data\. .*",
    r"Table \S+ and \d+ items have been successfully loaded from checkpoint at path .*",
    r"Successfully loaded \d+ tables from .*",
)
_ROUTINE_LINE = re.compile(
    rb"\[reverb/cc/[\w./-]+:\d+\] +(?:" + "|".join(ROUTINE).encode() + rb")\r?\n")
# TF 2.15's lines at a process's first XLA compilation (the frame replay's
# stack rebuild runs under XLA in the dataset): absl and XLA log them past
# TF_CPP_MIN_LOG_LEVEL. Dropped when a read holds them whole.
XLA_ROUTINE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"I\d{4} [\d:.]+ +\d+ device_compiler\.h:\d+\] Compiled cluster using XLA!  This line is "
    r"logged at most once for the lifetime of the process\.",
    r"[\d-]+ [\d:.]+: E external/local_xla/xla/stream_executor/stream_executor_internal\.h:\d+\] "
    r"SetPriority unimplemented for this stream\.",
)
_XLA_ROUTINE_LINE = re.compile(rb"(?m)^(?:" + "|".join(XLA_ROUTINE).encode() + rb")\r?\n")
_MARKER = b"[reverb/cc/"
_LONGEST_LINE = 1 << 16  # a held line longer than this is passed on as it is
_DISABLE = "TFRL_REVERB_LOGS"

_filter = None  # the filter process, once started


def quiet() -> None:
  """Routes this process's native stderr through the filter (once per
  process; a no-op with TFRL_REVERB_LOGS set or without a file descriptor 2)."""
  global _filter
  if _filter is not None or os.environ.get(_DISABLE) or not sys.executable:
    return
  try:
    console = os.dup(2)
  except OSError:
    return
  read_end, write_end = os.pipe()
  try:
    _filter = subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__)], stdin=read_end, stdout=console,
        # Its own process group: a Ctrl-C meant for the run does not stop the
        # filter; it ends when every writer of the pipe has closed it.
        process_group=0)
  except OSError:
    os.close(write_end)
    os.close(console)
    return
  finally:
    os.close(read_end)
  _flush_python_streams()
  os.dup2(write_end, 2)
  os.close(write_end)
  if _writes_to_fd_2(sys.stderr):
    # Python's own stderr goes on writing to the console itself: in order with
    # stdout, at once, and seen as a terminal (tqdm draws its bars only there).
    sys.stderr = io.TextIOWrapper(io.FileIO(console, "w", closefd=True),
                                  encoding=sys.stderr.encoding, errors=sys.stderr.errors,
                                  line_buffering=True, write_through=True)
  else:
    os.close(console)


def _flush_python_streams():
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (AttributeError, OSError, ValueError):
      pass


def _writes_to_fd_2(stream) -> bool:
  try:
    return stream is sys.__stderr__ and stream.fileno() == 2
  except (AttributeError, OSError, ValueError):
    return False  # pytest's capture, a notebook's stream: theirs to keep


def drop_routine(data: bytes, final: bool = False):
  """Splits a stretch of stderr into (what to write now, what to hold): routine
  Reverb lines are dropped whole (with their newline, so a progress bar they
  were glued onto stays on its line); a Reverb line still being written, or
  the start of one, is held for the next read. `final`: nothing more comes."""
  out = []
  data = _XLA_ROUTINE_LINE.sub(b"", data)
  while data:
    start = data.find(_MARKER)
    if start < 0:
      keep = 0 if final else _partial_marker(data)
      out.append(data[:len(data) - keep])
      data = data[len(data) - keep:]
      break
    out.append(data[:start])
    data = data[start:]
    end = data.find(b"\n")
    if end < 0:
      if final or len(data) > _LONGEST_LINE:
        out.append(data)
        data = b""
      break
    line, data = data[:end + 1], data[end + 1:]
    if not _ROUTINE_LINE.fullmatch(line):
      out.append(line)
  return b"".join(out), data


def _partial_marker(data: bytes) -> int:
  """How many bytes at the end of `data` could begin a Reverb line."""
  for n in range(min(len(_MARKER) - 1, len(data)), 0, -1):
    if _MARKER.startswith(data[-n:]):
      return n
  return 0


def _run_filter(source: int = 0, sink: int = 1):
  for name in ("SIGINT", "SIGTTOU", "SIGPIPE"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
  held = b""
  while True:
    # A held start of a line ("[rev") waits for the rest only briefly.
    if held and not select.select([source], [], [], 0.2)[0]:
      if not held.startswith(_MARKER):
        _write(sink, held)
        held = b""
      continue
    chunk = os.read(source, 1 << 16)
    try:
      out, held = drop_routine(held + chunk, final=not chunk)
    except Exception:  # pylint: disable=broad-except
      out, held = held + chunk, b""  # never lose output to a bug of the filter
    if out and not _write(sink, out):
      break
    if not chunk:
      break
  # The console has gone: keep reading so that writers never block.
  while os.read(source, 1 << 16):
    pass


def _write(sink: int, data: bytes) -> bool:
  try:
    while data:
      data = data[os.write(sink, data):]
    return True
  except OSError:
    return False


if __name__ == "__main__":
  _run_filter()
