"""The config drive: the instance's metadata (compute.metadata.content, the
same the metadata service serves) as an ISO9660 volume labelled
`config-2`, with Rock Ridge and Joliet names, as Nova builds it with
genisoimage, for guests that cannot reach 169.254.169.254."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from compute.metadata.content import InstanceMetadata

LABEL = "config-2"


class ConfigDriveError(Exception):
    pass


def write(instance, path):
    """Builds the config drive of `instance` at `path` (replacing what is
    there). Made beside it and renamed into place, so a killed worker
    never leaves half an image that a domain then attaches."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = InstanceMetadata(instance).config_drive_files()
    with tempfile.TemporaryDirectory(prefix=".config-drive-", dir=path.parent) as scratch:
        root = Path(scratch) / "root"
        for name, content in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        partial = Path(scratch) / "disk.config"
        command = [shutil.which("genisoimage") or "genisoimage", "-o", str(partial), "-ldots", "-allow-lowercase",
                   "-allow-multidot", "-l", "-publisher", "Stratus", "-quiet", "-J", "-r", "-V", LABEL, str(root)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise ConfigDriveError("genisoimage is not installed on this node (Debian package genisoimage).") \
                from None
        if result.returncode != 0:
            raise ConfigDriveError(f"genisoimage failed ({result.returncode}): {result.stderr.strip()}")
        os.replace(partial, path)
    return path
