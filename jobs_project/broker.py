"""kombu's filesystem transport, made safe for several processes on one machine.

The stock transport writes a message file in place, so a worker polling the
folder can take it while it is still empty and die on the JSON error; and it
moves taken messages to the system's temporary folder, which may be another
file system (a copy, not an atomic move). Here a message is written under a
name no reader matches and renamed when complete, and a reader claims a
message by renaming it into a folder beside the queue (one atomic step, so
one reader wins), reads it and deletes it.

Registered as the ``jobsfs://`` transport (see ``jobs_project.celery``).
"""
from __future__ import annotations

import logging
import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # ends in .part: no reader takes it
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)

    def _get(self, queue):
        wanted = f"{queue}.msg"
        claimed_folder = os.path.join(self.data_folder_in, ".claimed")
        os.makedirs(claimed_folder, exist_ok=True)
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(claimed_folder, f"{os.getpid()}-{name}")
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # another reader took it
            try:
                with open(claimed, "rb") as handle:
                    payload = handle.read()
            finally:
                os.remove(claimed)
            try:
                return loads(bytes_to_str(payload))
            except ValueError:
                logger.error("dropped an unreadable message file %s (%d bytes)", name, len(payload))
        raise filesystem.Empty()


class Transport(filesystem.Transport):
    Channel = Channel
