"""Liger's kernels are Triton functions: Triton compiles them from their Python source, so ship the .py files."""
from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

# megatron/ needs Megatron-LM and testing/ pytest: neither is part of the studio
hiddenimports = collect_submodules("liger_kernel", filter=lambda n: ".megatron" not in n and ".testing" not in n,
                                   on_error="ignore")
datas = collect_data_files("liger_kernel") + copy_metadata("liger-kernel")
module_collection_mode = "pyz+py"
