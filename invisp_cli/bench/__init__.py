"""``invisp bench``: RAW → JPEG → RAW benchmark of invisp models against baselines on the same files.

    records.py    the data: configuration, records, per-file facts, the result, every quantity's definition
    run.py        the loop: files × methods × JPEG qualities → records (metrics, sizes, times, memory)
    baselines.py  analytic (metadata-aided inverse of LibRaw's JPEG), upi (Brooks et al. 2019 priors), miniraw
    sizes.py      storage baselines: RAW file, B_BMP, DNG, lossless-JPEG DNG (est.), JPEG XL lossless
    tiers.py      --tiers: invisp JPEG + layer at --max-error tiers against JPEG XL lossless / lossy d0.2 and LJ92
    report.py     rich tables, report.json, report.csv
    plot.py       rd_curve.png, errors_<file>.png
"""

from .records import BenchConfig, BenchResult, Record
from .run import run_bench, write_outputs

__all__ = ["BenchConfig", "BenchResult", "Record", "run_bench", "write_outputs"]
