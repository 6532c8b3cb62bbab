; Inno Setup 6 script: a per-machine installer for the Windows one-folder build.
; NOT BUILT OR TESTED YET (the studio is built and tested on Linux only so far); see packaging/README.md.
; Build: packaging\windows\build.ps1 gpu   (runs PyInstaller, then ISCC on this file)
#define AppVersion GetEnv("STUDIO_VERSION")
#define Flavour GetEnv("STUDIO_FLAVOUR")
#define DistDir "..\..\dist\" + Flavour + "\studio"

[Setup]
AppId={{6E1F2E0B-7C59-4C1E-9F3A-5A0B7D3C2F10}
AppName=Studio
AppVersion={#AppVersion}
AppPublisher=Studio maintainers
DefaultDirName={autopf}\Studio
DefaultGroupName=Studio
OutputDir=..\..\dist
OutputBaseFilename=studio-{#AppVersion}-windows-x64-{#Flavour}-setup
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
Compression=lzma2/max
SolidCompression=yes
; torch's DLLs make the folder large; disk spanning is not needed for a download
DiskSpanning=no
WizardStyle=modern
UninstallDisplayIcon={app}\studio.exe
ChangesEnvironment=yes

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Studio"; Filename: "{app}\studio.exe"
Name: "{group}\Studio diagnostics (self-test)"; Filename: "{cmd}"; Parameters: "/k ""{app}\studio.exe"" --self-test"
Name: "{autodesktop}\Studio"; Filename: "{app}\studio.exe"; Tasks: desktopicon

[Tasks]
Name: desktopicon; Description: "Create a desktop shortcut"; Flags: unchecked
Name: addtopath; Description: "Add the studio command to PATH"; Flags: unchecked

[Registry]
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; ValueType: expandsz; \
  ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath('{app}')

[Run]
Filename: "{app}\studio.exe"; Description: "Start Studio"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Param: string): boolean;
var
  OrigPath: string;
begin
  if not RegQueryStringValue(HKEY_LOCAL_MACHINE,
    'SYSTEM\CurrentControlSet\Control\Session Manager\Environment', 'Path', OrigPath)
  then begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + ExpandConstant(Param) + ';', ';' + OrigPath + ';') = 0;
end;
