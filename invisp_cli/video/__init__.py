"""RAW video: sequences of RAW frames ⇄ MP4 (H.264/H.265) with the video flow (TPAMI sec. 4.2, 4.3.2).

    frames.py     RAW frame lists, sequence checks, sliding windows, test sequences
    container.py  MP4 writing/reading through PyAV: exact BT.709 full-range YUV, invisp metadata tags
    simulator.py  the differentiable H.264/H.265 simulator (intra / inter frames)
    codec.py      encode (RAW frames → MP4) and decode (MP4 → one DNG per frame), streaming
    train.py      ``invisp train --video``

The video flow itself (``video-squeeze``) is an architecture like any other: ``flows/video.py``."""
