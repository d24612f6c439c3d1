#!/bin/sh
# Runs once per uploaded image, in a container of the ImageMagick image: writes a grayscale
# copy, with the same name, to the output folder (the function's output bucket path).
out="$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
echo "Converting $INPUT_FILE_PATH to grayscale as $out"
convert "$INPUT_FILE_PATH" -type Grayscale "$out"
