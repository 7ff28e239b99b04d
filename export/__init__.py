"""keras_effnet.export: the export layer (TFLite, QAT, ONNX, verification).

Installed as `keras_effnet.export` (see setup.py's package_dir). It imports `keras_effnet`;
`keras_effnet` never imports it.
"""
