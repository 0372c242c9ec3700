<?php
/* plexcache-r: the one endpoint the pages talk to.
 *
 * GET  ?action=NAME  read-only: status, settings, lists, audit findings, log tail, job results.
 * POST action=NAME   changes something; needs Unraid's csrf_token (checked here too, not only by emhttp).
 * Unknown actions are refused; every argument reaches the shell through escapeshellarg (helpers.php);
 * paths must be files plexcache-r manages; long jobs run detached and the page polls `status`.
 */
require_once __DIR__.'/helpers.php';

const PCR_READ = ['status', 'config', 'defaults', 'list', 'plan', 'audit', 'plex_test', 'plex_libraries',
                  'plex_users', 'log', 'job'];
const PCR_WRITE = ['config_set', 'run', 'stop', 'evict', 'evict_all', 'pin', 'unpin', 'audit_fix', 'plex_login',
                   'plex_login_poll'];
const PCR_JOBS = ['run', 'evict', 'audit_fix'];
const PCR_MAX_PATHS = 2000;       // per request; more would overflow the command line
const PCR_LOG_WINDOW = 524288;    // bytes read from the end of the log, never more
const PCR_LOG_LEVELS = ['DEBUG' => 10, 'INFO' => 20, 'WARNING' => 30, 'ERROR' => 40, 'CRITICAL' => 50];

function pcr_reply(array $doc, int $http = 200): void {
  http_response_code($http);
  header('Content-Type: application/json');
  header('Cache-Control: no-store');
  echo json_encode($doc, JSON_UNESCAPED_SLASHES);
  exit;
}

function pcr_refuse(string $message, int $http = 400): void {
  pcr_reply(['ok' => false, 'error' => $message], $http);
}

/** Pass the CLI's document through; HTTP stays 200 because the document says what went wrong. */
function pcr_forward(array $res): void {
  $doc = $res['doc'];
  $doc['exit_code'] = $doc['exit_code'] ?? $res['code'];
  pcr_reply($doc);
}

function pcr_check_csrf(): void {
  $sent = (string)($_POST['csrf_token'] ?? $_SERVER['HTTP_X_CSRF_TOKEN'] ?? '');
  $token = pcr_csrf_token();
  if ($token === '' || $sent === '' || !hash_equals($token, $sent)) pcr_refuse('wrong csrf_token', 403);
}

// --- detached jobs ----------------------------------------------------------------------------------

/** Where detached jobs leave pid, output and exit code; only starting a job creates it (GET writes nothing). */
function pcr_job_dir(bool $create = false): string {
  $dir = rtrim(pcr_path_setting('volatile_dir'), '/').'/web';
  if ($create && !is_dir($dir)) @mkdir($dir, 0700, true);
  return $dir;
}

function pcr_job_running(string $name): bool {
  $dir = pcr_job_dir();
  $pid = (int)@file_get_contents("$dir/$name.pid");
  return $pid > 0 && !file_exists("$dir/$name.rc") && @posix_kill($pid, 0);
}

/** Start the CLI in its own session so closing the browser never stops it; output goes to files. */
function pcr_job_start(string $name, array $args): void {
  if (pcr_job_running($name)) pcr_refuse('that job is already running; wait for it or press Stop', 409);
  $dir = pcr_job_dir(true);
  foreach (['out', 'err', 'rc', 'pid'] as $ext) @unlink("$dir/$name.$ext");
  $cmd = pcr_base_cmd();
  foreach ($args as $a) $cmd .= ' '.escapeshellarg((string)$a);
  $out = escapeshellarg("$dir/$name.out"); $err = escapeshellarg("$dir/$name.err"); $rc = escapeshellarg("$dir/$name.rc");
  $inner = "$cmd >$out 2>$err; echo \$? >$rc";
  $pid = trim((string)shell_exec('setsid nohup sh -c '.escapeshellarg($inner).' </dev/null >/dev/null 2>&1 & echo $!'));
  file_put_contents("$dir/$name.pid", $pid);
  file_put_contents("$dir/$name.started", (string)microtime(true));
  pcr_reply(['ok' => true, 'started' => true, 'job' => $name, 'started_at' => microtime(true)]);
}

function pcr_job_info(string $name): array {
  $dir = pcr_job_dir();
  $info = ['ok' => true, 'job' => $name, 'running' => pcr_job_running($name),
           'started_at' => (float)@file_get_contents("$dir/$name.started") ?: null];
  if (is_file("$dir/$name.rc")) $info['exit_code'] = (int)file_get_contents("$dir/$name.rc");
  $result = json_decode((string)@file_get_contents("$dir/$name.out"), true);
  if (is_array($result)) $info['result'] = $result;
  $err = trim((string)@file_get_contents("$dir/$name.err", false, null, 0, 8192));
  if (isset($info['exit_code']) && $info['exit_code'] != 0 && $err !== '') {
    $info['error'] = preg_replace('/^plexcache-r: /', '', strtok($err, "\n"));
  }
  return $info;
}

// --- input checks ---------------------------------------------------------------------------------

/** The posted paths, each one a file plexcache-r manages (else the whole request is refused). */
function pcr_managed_paths(): array {
  $paths = $_POST['paths'] ?? [];
  if (is_string($paths)) $paths = json_decode($paths, true);
  if (!is_array($paths) || !$paths) pcr_refuse('no files given');
  if (count($paths) > PCR_MAX_PATHS) pcr_refuse('too many files in one request (at most '.PCR_MAX_PATHS.')');
  $res = pcr_cli(['list']);
  if (!($res['doc']['ok'] ?? false)) pcr_refuse('cannot read the managed files: '.($res['doc']['error'] ?? 'unknown error'), 503);
  $managed = [];
  foreach ($res['doc']['files'] ?? [] as $f) $managed[$f['path']] = true;
  foreach ($paths as $p) {
    if (!is_string($p) || !isset($managed[$p])) pcr_refuse('not a file plexcache-r manages: '.(is_string($p) ? $p : '?'));
  }
  return array_values(array_unique($paths));
}

function pcr_audit_kinds(): array {
  $kinds = $_POST['kinds'] ?? [];
  if (is_string($kinds)) $kinds = [$kinds];
  if (!is_array($kinds) || !$kinds) pcr_refuse('no fix chosen');
  foreach ($kinds as $k) if (!is_string($k) || !preg_match('/^[a-z][a-z0-9_-]{0,40}$/', $k)) pcr_refuse('unknown fix');
  return array_values(array_unique($kinds));
}

// --- the log ----------------------------------------------------------------------------------------

/** A bounded tail of the log: at most PCR_LOG_WINDOW bytes are read, filtered by level and text. */
function pcr_log_tail(): array {
  $file = pcr_log_file();
  $want = max(1, min(2000, (int)($_GET['lines'] ?? 300)));
  $min = PCR_LOG_LEVELS[strtoupper((string)($_GET['level'] ?? 'DEBUG'))] ?? 10;
  $q = (string)($_GET['q'] ?? '');
  clearstatcache(true, $file);
  if (!is_file($file)) return ['ok' => true, 'lines' => [], 'offset' => 0, 'size' => 0, 'missing' => true];
  $size = filesize($file);
  $from = isset($_GET['offset']) ? (int)$_GET['offset'] : -1;
  if ($from < 0 || $from > $size || $size - $from > PCR_LOG_WINDOW) $from = max(0, $size - PCR_LOG_WINDOW);
  $fh = fopen($file, 'rb');
  fseek($fh, $from);
  $chunk = (string)fread($fh, $size - $from);
  fclose($fh);
  if ($from > 0 && !isset($_GET['offset'])) $chunk = substr($chunk, (int)strpos($chunk, "\n") + 1);
  $lines = [];
  $level = 20;
  foreach (explode("\n", rtrim($chunk, "\n")) as $line) {
    if ($line === '') continue;
    // "2026-01-01 12:00:00,123 INFO    plexcache.x: text"; continuation lines keep the level before them
    if (preg_match('/^\d{4}-\d\d-\d\d [\d:,.]+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\b/', $line, $m)) $level = PCR_LOG_LEVELS[$m[1]];
    if ($level < $min || ($q !== '' && stripos($line, $q) === false)) continue;
    $lines[] = $line;
  }
  return ['ok' => true, 'lines' => array_slice($lines, -$want), 'offset' => $size, 'size' => $size];
}

// --- dispatch ---------------------------------------------------------------------------------------

function pcr_get(string $action): void {
  switch ($action) {
    case 'status': pcr_forward(pcr_cli(['status']));
    case 'config': pcr_forward(pcr_cli(['config', 'show']));
    case 'defaults': pcr_forward(pcr_cli(['config', 'defaults']));
    case 'list': pcr_forward(pcr_cli(['list'], null, null, 120));
    case 'plan': pcr_forward(pcr_cli(['plan'], null, null, 300));
    case 'audit': pcr_forward(pcr_cli(['audit'], null, null, 300));
    case 'plex_test': pcr_forward(pcr_cli(['plex', 'test']));
    case 'plex_libraries': pcr_forward(pcr_cli(['plex', 'libraries']));
    case 'plex_users': pcr_forward(pcr_cli(['plex', 'users']));
    case 'log': pcr_reply(pcr_log_tail());
    case 'job':
      $name = (string)($_GET['name'] ?? '');
      if (!in_array($name, PCR_JOBS, true)) pcr_refuse('unknown job');
      pcr_reply(pcr_job_info($name));
  }
}

function pcr_post(string $action): void {
  pcr_check_csrf();
  switch ($action) {
    case 'config_set':
      $doc = json_decode((string)($_POST['settings'] ?? ''), true);
      if (!is_array($doc)) pcr_refuse('the settings sent are not a JSON mapping');
      $args = ['config', 'set', '--merge'];
      if (!empty($_POST['check'])) $args[] = '--check';
      $res = pcr_cli($args, json_encode($doc));
      if (($res['doc']['ok'] ?? false) && empty($_POST['check'])) {
        $sched = pcr_cli(['schedule', 'apply']);
        $res['doc']['schedule'] = $sched['doc'];
      }
      pcr_forward($res);
    case 'run': pcr_job_start('run', !empty($_POST['dry_run']) ? ['run', '--dry-run'] : ['run']);
    case 'stop': pcr_forward(pcr_cli(['stop']));
    case 'evict': pcr_job_start('evict', array_merge(['evict', '--'], pcr_managed_paths()));
    case 'evict_all':
      if (($_POST['confirm'] ?? '') !== 'all') pcr_refuse('moving every file back needs confirm=all');
      pcr_job_start('evict', ['evict', '--all']);
    case 'pin': pcr_forward(pcr_cli(array_merge(['pin', '--'], pcr_managed_paths())));
    case 'unpin': pcr_forward(pcr_cli(array_merge(['pin', '--off', '--'], pcr_managed_paths())));
    case 'audit_fix':
      $args = ['audit'];
      foreach (pcr_audit_kinds() as $k) { $args[] = '--fix'; $args[] = $k; }
      pcr_job_start('audit_fix', $args);
    // PIN sign-in: --start asks plex.tv for a code (kept in the volatile dir), --poll stores the token once
    // the code was entered. Poll writes the settings, so it is a POST too.
    case 'plex_login': pcr_forward(pcr_cli(['plex', 'login', '--start']));
    case 'plex_login_poll': pcr_forward(pcr_cli(['plex', 'login', '--poll']));
  }
}

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$action = (string)($method == 'POST' ? ($_POST['action'] ?? '') : ($_GET['action'] ?? ''));
if (in_array($action, PCR_READ, true)) {
  if ($method != 'GET') pcr_refuse('use GET for '.$action, 405);
  pcr_get($action);
} elseif (in_array($action, PCR_WRITE, true)) {
  if ($method != 'POST') pcr_refuse('use POST for '.$action, 405);
  pcr_post($action);
}
pcr_refuse('unknown action', 400);
