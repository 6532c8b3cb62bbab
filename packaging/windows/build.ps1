# Windows build: one-folder app with PyInstaller, then the Inno Setup installer.
# NOT RUN YET: written alongside the Linux build, which is the one built and tested.
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 gpu|cpu
# Needs Python 3.11 (python.org build) and Inno Setup 6 (ISCC.exe on PATH).
param([ValidateSet("cpu", "gpu")][string]$Flavour = "gpu")
$ErrorActionPreference = "Stop"
$Root = Resolve-Path "$PSScriptRoot\..\.."
Set-Location $Root
$Version = (Select-String -Path studio\__init__.py -Pattern '__version__ = "(.*)"').Matches[0].Groups[1].Value
$Venv = "build\venv-$Flavour"
py -3.11 -m venv --clear $Venv
$Extra = @()
# On Windows pip installs the CPU torch by default; the GPU flavour takes the CUDA wheel index.
if ($Flavour -eq "gpu") { $Extra = @("--extra-index-url", "https://download.pytorch.org/whl/cu128") }
& "$Venv\Scripts\pip" install @Extra -r "packaging\requirements-$Flavour.txt" pillow
New-Item -ItemType Directory -Force "build\$Flavour" | Out-Null
"{""flavour"": ""$Flavour"", ""version"": ""$Version"", ""built"": ""$(Get-Date -Format s)""}" |
    Set-Content -Encoding utf8 "build\$Flavour\studio_build.json"
$env:STUDIO_FLAVOUR = $Flavour
$env:STUDIO_BUILD_INFO = "$Root\build\$Flavour\studio_build.json"
& "$Venv\Scripts\pyinstaller" --noconfirm --distpath "dist\$Flavour" --workpath "build\$Flavour\work" packaging\studio.spec
& "dist\$Flavour\studio\studio.exe" --self-test
if ($LASTEXITCODE -ne 0) { throw "self-test failed" }
$env:STUDIO_VERSION = $Version
ISCC.exe packaging\windows\studio.iss
