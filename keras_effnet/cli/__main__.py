"""`python -m keras_effnet.cli`: the `effnet` command."""

from keras_effnet.cli.main import run

run()
