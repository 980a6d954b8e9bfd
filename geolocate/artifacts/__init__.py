"""What a run leaves behind and what ships: run directories, self-describing checkpoints, the
global best, training state, the data lock, snapshot exports and frozen releases.

Modules are imported directly (`geolocate.artifacts.checkpoint`, ...); none imports torch at
module level, so the data commands can use the lock and the CLI stays light.
"""
