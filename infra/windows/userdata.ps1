<powershell>
# tokken domain join / leave by EC2 tag. Runs on every boot (persist=true).
#
# The bot sets tag domain=join|unjoin (plus domain-request=<operation id>)
# and reboots the instance. On boot this script reads its own tags, joins or
# leaves the Active Directory domain with credentials from Secrets Manager,
# reboots once if the change needs it, and reports through its own tags:
#   domain-ack      = the request id the tags below refer to
#   domain-status   = pending | joined | unjoined | failed
#   domain-progress = joining | leaving | rebooting | done | stopped
#   domain-reason   = short ASCII reason when failed
# It is idempotent: a boot that finds the instance already in the requested
# state only makes sure the status tags say so. The transcript is in
# C:\ProgramData\tokken\domain.log. Keep this file ASCII only.

# ---- tokken config begin (rendered by tokken: windows.UserData) ----
$ControlTagKey  = 'domain'
$JoinValue      = 'join'
$UnjoinValue    = 'unjoin'
$RequestTagKey  = 'domain-request'
$AckTagKey      = 'domain-ack'
$StatusTagKey   = 'domain-status'
$JoinedValue    = 'joined'
$UnjoinedValue  = 'unjoined'
$FailedValue    = 'failed'
$PendingValue   = 'pending'
$ProgressTagKey = 'domain-progress'
$ReasonTagKey   = 'domain-reason'
$SecretTagKey   = 'domain-secret'
$SecretId       = ''
$MaxReboots     = 2
# ---- tokken config end ----

$ErrorActionPreference = 'Stop'
$StateDir = Join-Path $env:ProgramData 'tokken'
$MarkerPath = Join-Path $StateDir 'domain-state.json'
$Imds = 'http://169.254.169.254/latest'
$InstanceId = $null
$Region = $null
$Request = 'manual'
$Changing = $false

function Write-Log([string]$Message) {
    Write-Output ('{0} {1}' -f (Get-Date).ToUniversalTime().ToString('u'), $Message)
}

# UTC and a fresh sync before any AWS call: SigV4 rejects more than 5 minutes
# of skew, and a local-time clock read as UTC makes new tokens look expired.
function Sync-Clock {
    & tzutil.exe /s 'UTC'
    Set-Service -Name w32time -StartupType Automatic
    Start-Service -Name w32time
    for ($i = 1; $i -le 5; $i++) {
        & w32tm.exe /resync /force | Out-Null
        if ($LASTEXITCODE -eq 0) { Write-Log 'clock: UTC, resynced'; return }
        Start-Sleep -Seconds 3
    }
    Write-Log 'clock: UTC, resync did not succeed; continuing with the current clock'
}

function Get-Imds([string]$Path) {
    $headers = @{ 'X-aws-ec2-metadata-token' = $script:Token }
    (Invoke-WebRequest -UseBasicParsing -TimeoutSec 5 -Headers $headers -Uri "$Imds/$Path").Content
}

# Tags from instance metadata (IMDSv2, needs InstanceMetadataTags=enabled),
# else from DescribeTags. Keys are case-sensitive, like EC2 tags.
function Get-InstanceTags {
    $tags = New-Object System.Collections.Hashtable
    try {
        $keys = (Get-Imds 'meta-data/tags/instance') -split "`n"
        foreach ($k in $keys) {
            $k = $k.Trim()
            if ($k) { $tags[$k] = [string](Get-Imds "meta-data/tags/instance/$k") }
        }
        return $tags
    } catch {
        Write-Log "metadata tags unavailable ($($_.Exception.Message)); using DescribeTags"
    }
    $filter = @{ Name = 'resource-id'; Values = $InstanceId }
    foreach ($t in (Get-EC2Tag -Region $Region -Filter $filter)) { $tags[$t.Key] = $t.Value }
    return $tags
}

# The only place that writes tags. The instance policy lets it set only the
# status keys, and only on itself.
function Set-Tags([hashtable]$Tags) {
    $list = foreach ($k in $Tags.Keys) {
        $t = New-Object Amazon.EC2.Model.Tag
        $t.Key = $k
        $t.Value = [string]$Tags[$k]
        $t
    }
    New-EC2Tag -Region $Region -Resource $InstanceId -Tag $list
    Write-Log ('tagged ' + (($Tags.Keys | ForEach-Object { "$_=$($Tags[$_])" }) -join ', '))
}

function Set-Failed([string]$Reason) {
    $r = ($Reason -replace '[^\x20-\x7E]', ' ').Trim()
    if ($r.Length -gt 250) { $r = $r.Substring(0, 250) }
    Write-Log "FAILED: $r"
    Set-Tags @{ $AckTagKey = $Request; $StatusTagKey = $FailedValue; $ProgressTagKey = 'stopped'; $ReasonTagKey = $r }
}

function Set-Done([hashtable]$Tags, [string]$Status) {
    if (Test-Path $MarkerPath) { Remove-Item -Force $MarkerPath }
    if ($Tags[$AckTagKey] -eq $Request -and $Tags[$StatusTagKey] -eq $Status -and $Tags[$ProgressTagKey] -eq 'done') {
        Write-Log "already $Status; status tags are current"
        return
    }
    Set-Tags @{ $AckTagKey = $Request; $StatusTagKey = $Status; $ProgressTagKey = 'done'; $ReasonTagKey = '' }
}

# Reboots made for one request, so a change that never takes cannot loop.
function Get-Reboots([string]$Desired) {
    if (-not (Test-Path $MarkerPath)) { return 0 }
    try {
        $m = Get-Content -Raw -Path $MarkerPath | ConvertFrom-Json
        if ($m.request -eq $Request -and $m.action -eq $Desired) { return [int]$m.reboots }
    } catch {
        Write-Log "ignoring unreadable $MarkerPath"
    }
    return 0
}

function Restart-ForChange([string]$Desired, [int]$Reboots) {
    @{ request = $Request; action = $Desired; reboots = $Reboots + 1 } | ConvertTo-Json | Set-Content -Encoding Ascii -Path $MarkerPath
    Set-Tags @{ $ProgressTagKey = 'rebooting' }
    Write-Log 'rebooting to complete the change'
    & shutdown.exe /r /t 15 /d p:4:2 /c 'tokken: domain membership change'
}

# The secret is JSON: {"domain": "...", "username": "...", "password": "...",
# "ou": "optional OU distinguished name"}. Never written to the transcript.
function Get-JoinSecret([hashtable]$Tags) {
    $id = $SecretId
    if (-not $id) { $id = $Tags[$SecretTagKey] }
    if (-not $id) { throw "no secret: set tag $SecretTagKey to the join secret's ARN" }
    $s = (Get-SECSecretValue -Region $Region -SecretId $id).SecretString | ConvertFrom-Json
    if (-not $s.domain -or -not $s.username -or -not $s.password) { throw "secret $id lacks domain, username or password" }
    return $s
}

function New-JoinCredential($Secret) {
    $pw = ConvertTo-SecureString -String $Secret.password -AsPlainText -Force
    New-Object System.Management.Automation.PSCredential($Secret.username, $pw)
}

function Invoke-DomainChange([hashtable]$Tags, [string]$Desired) {
    $secret = Get-JoinSecret $Tags
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem
    $inDomain = $cs.PartOfDomain -and ($cs.Domain -eq $secret.domain)
    if ($Desired -eq $JoinValue -and $inDomain) { Set-Done $Tags $JoinedValue; return }
    if ($Desired -eq $UnjoinValue -and -not $cs.PartOfDomain) { Set-Done $Tags $UnjoinedValue; return }
    if ($Desired -eq $JoinValue -and $cs.PartOfDomain) { throw "member of another domain ($($cs.Domain)); leave it first" }

    $reboots = Get-Reboots $Desired
    if ($reboots -ge $MaxReboots) { throw "change not in effect after $reboots reboots" }
    $cred = New-JoinCredential $secret
    if ($Desired -eq $JoinValue) {
        Set-Tags @{ $AckTagKey = $Request; $StatusTagKey = $PendingValue; $ProgressTagKey = 'joining'; $ReasonTagKey = '' }
        $join = @{ DomainName = $secret.domain; Credential = $cred; Force = $true }
        if ($secret.ou) { $join.OUPath = $secret.ou }
        Add-Computer @join
    } else {
        Set-Tags @{ $AckTagKey = $Request; $StatusTagKey = $PendingValue; $ProgressTagKey = 'leaving'; $ReasonTagKey = '' }
        Remove-Computer -UnjoinDomainCredential $cred -WorkgroupName 'WORKGROUP' -Force
    }
    Restart-ForChange $Desired $reboots
}

New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
Start-Transcript -Append -Path (Join-Path $StateDir 'domain.log') | Out-Null
try {
    Sync-Clock
    $headers = @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '21600' }
    $Token = (Invoke-WebRequest -UseBasicParsing -TimeoutSec 5 -Method Put -Headers $headers -Uri "$Imds/api/token").Content
    $InstanceId = Get-Imds 'meta-data/instance-id'
    $Region = Get-Imds 'meta-data/placement/region'
    $tags = Get-InstanceTags
    $desired = $tags[$ControlTagKey]
    if ($tags[$RequestTagKey]) { $Request = $tags[$RequestTagKey] }
    Write-Log "instance $InstanceId in $Region, $ControlTagKey='$desired', request $Request"
    if ($desired -eq $JoinValue -or $desired -eq $UnjoinValue) {
        $Changing = $true
        Invoke-DomainChange $tags $desired
    } else {
        Write-Log 'no domain change requested'
    }
} catch {
    $msg = $_.Exception.Message
    Write-Log "error: $msg"
    if ($Changing) {
        try { Set-Failed $msg } catch { Write-Log "could not report failure: $($_.Exception.Message)" }
    }
} finally {
    Stop-Transcript | Out-Null
}
</powershell>
<persist>true</persist>
