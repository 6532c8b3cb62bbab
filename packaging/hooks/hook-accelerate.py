"""accelerate imports its utilities lazily and checks its own version through metadata."""
from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = collect_submodules("accelerate", filter=lambda n: ".test_utils" not in n and ".commands" not in n,
                                   on_error="ignore")
datas = collect_data_files("accelerate", excludes=["**/test_utils/**"]) + copy_metadata("accelerate")
