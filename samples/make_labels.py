"""Regenerate samples/labels.mp4: `python samples/make_labels.py` (needs scikit-image).

labels.mp4 : 3 s, 25 fps, 320x180 H.264 label video for `--plugin seg2vid`: scikit-image's "astronaut"
             photo segmented into the seg2vid classes (palette colours, see `vidgen plugins`), moved by a
             slow pan and zoom with nearest-neighbour resampling. No audio.
"""

from __future__ import annotations

from pathlib import Path

from make_samples import write_clip

from vidgen_seg2vid.labels import colourise, label_path, segment

HERE = Path(__file__).parent


def main() -> None:
    from skimage import data

    labels = label_path(segment(data.astronaut()), 320, 180, 75, seed=3)
    write_clip(HERE / "labels.mp4", colourise(labels), fps=25, audio=False)


if __name__ == "__main__":
    main()
