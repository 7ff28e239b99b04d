"""ARM (aarch64) emulation for the tests and benchmarks/arm.py: set-up (`make arm`,
setup_arm.py), the runner inside the emulated Python (run_tflite.py) and the host side
(emulator.py)."""
