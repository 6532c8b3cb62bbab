"""peft picks tuners and model mappings by name at run time; ship all of them, with sources."""
from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = collect_submodules("peft", on_error="ignore")
datas = collect_data_files("peft") + copy_metadata("peft")
module_collection_mode = "pyz+py"
