"""The `effnet` command line:
effnet {quickstart|build|profile|train|eval|export|predict|app|serve|search|budget}.

    effnet quickstart              # build → train → int8 TFLite + ONNX → verify → report
    effnet quickstart --data=folder:/data/my_images --phi=1 --base_resolution=96
    effnet profile --variants=b0,b1,b2,b3,b4,b5,b6,b7
    effnet build --variant=lite0 --num_classes=10 --out=lite0.keras
    effnet train --variant=lite0 --data=folder:/data/my_images --resolution=64 --out=runs/mine
    effnet eval --model=runs/mine/model.keras --data=folder:/data/my_images
    effnet export --model=runs/mine/model.keras --quantize=int8 --out=deploy/  # the run's data
    effnet predict --model=deploy/model_int8.tflite photo.jpg more_photos/
    effnet app --model=deploy/model_int8.tflite --out=app --examples=more_photos/ --serve
    effnet serve app
    effnet search --base=lite --data=folder:/data/my_images --resolution=64 --epochs=5 --seeds=2
    effnet budget --base=lite --latency_ms=5 --quantize=int8 --threads=2

Each command takes its own flags (`effnet COMMAND --help` lists them); a flag given to a
command that does not take it is an error.
"""

# Each command is a plain function with typed keyword parameters (one module per group of
# commands), which tests and scripts call in this process; keras_effnet.cli.main dispatches
# argv to them (its `main(argv)`: the command line in this process).
from keras_effnet.cli.export import export_path
from keras_effnet.cli.main import (COMMAND_FLAGS, COMMANDS, cli_syntax, command_help,
                                   flag_values, general_help, run)
from keras_effnet.cli.quickstart import QUICKSTART_DEFAULTS, QUICKSTART_LEARNING_RATES

__all__ = ["COMMANDS", "COMMAND_FLAGS", "QUICKSTART_DEFAULTS", "QUICKSTART_LEARNING_RATES",
           "cli_syntax", "command_help", "export_path", "flag_values", "general_help", "run"]
