# Install the dotMage CLI on Windows:
#     irm <release page>/install.ps1 | iex
# Downloads dmage.pyz to %LOCALAPPDATA%\dotmage\, writes a dmage.cmd launcher
# beside it (it runs `py -3`, else `python`), and adds that folder to the user
# PATH. dmage.pyz needs Python 3.10 or newer.
#
# Where dmage.pyz comes from: the -Url parameter, else the DOTMAGE_PYZ_URL
# environment variable, else the project's release page (ReleaseUrl below).
param(
    [string]$Url = $env:DOTMAGE_PYZ_URL,
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA 'dotmage')
)

$ErrorActionPreference = 'Stop'
# The project's release page: replace with your fork's when you publish one.
$ReleaseUrl = 'https://dotmage.invalid/releases/latest/download/dmage.pyz'
if (-not $Url) { $Url = $ReleaseUrl }

function Find-Python {
    # The py launcher picks the newest installed Python; `python` may be the
    # Microsoft Store stub, which prints nothing and fails the version check.
    foreach ($candidate in @(@('py', '-3'), @('python'))) {
        $exe = $candidate[0]
        if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
        $rest = @($candidate | Select-Object -Skip 1)
        $check = 'import sys; print(int(sys.version_info >= (3, 10)))'
        $ok = & $exe @rest -c $check 2>$null
        if ($LASTEXITCODE -eq 0 -and "$ok".Trim() -eq '1') {
            # The comma keeps a one-word command an array on return.
            return , $candidate
        }
    }
    return $null
}

$python = Find-Python
if (-not $python) {
    Write-Host 'dmage needs Python 3.10 or newer, and none was found (tried py -3 and python).' -ForegroundColor Red
    Write-Host 'Install it from python.org or with: winget install Python.Python.3.12'
    Write-Host 'then open a new terminal and run this installer again.'
    exit 1
}

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
$pyz = Join-Path $InstallDir 'dmage.pyz'
$partial = "$pyz.partial"
Write-Host "Downloading dmage.pyz from $Url"
Invoke-WebRequest -Uri $Url -OutFile $partial -UseBasicParsing
Move-Item -Force -Path $partial -Destination $pyz

# dmage.cmd: %~dp0 is the launcher's own folder; %* passes every argument on.
$launcher = Join-Path $InstallDir 'dmage.cmd'
$lines = @(
    '@echo off',
    "$($python -join ' ') `"%~dp0dmage.pyz`" %*",
    'exit /b %ERRORLEVEL%'
)
Set-Content -Path $launcher -Value $lines -Encoding ASCII

$userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
$parts = @($userPath -split ';' | Where-Object { $_ })
if ($parts -notcontains $InstallDir) {
    [Environment]::SetEnvironmentVariable('Path', (($parts + $InstallDir) -join ';'), 'User')
    Write-Host "Added $InstallDir to your user PATH."
}

$exe = $python[0]
$rest = @($python | Select-Object -Skip 1)
& $exe @rest $pyz --version
Write-Host ''
Write-Host 'dmage is installed. Restart your terminal, then run: dmage auth --server http://<server>:9470' -ForegroundColor Green
