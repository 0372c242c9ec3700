<?php
/* plexcache-r: the one endpoint the pages talk to.
 *
 * GET  ?action=NAME  read-only: status, settings, lists, audit findings, log tail, job results.
 * POST action=NAME   changes something. On Unraid, local_prepend.php (php's auto_prepend_file) has checked
 *                    csrf_token against var.ini and removed it before this file runs; reached without that
 *                    check, the endpoint makes it itself.
 * Every field is one value; lists (paths, fix kinds) travel as one JSON field. Unknown actions are refused;
 * every argument reaches the shell through escapeshellarg (helpers.php); paths must be files plexcache-r
 * manages and reach the CLI in a file or on stdin, never on its command line; long jobs run detached and
 * the page polls `status`. Each action is one function that returns its answer, so one request runs one
 * action; anything unexpected, a PHP warning included, is answered as a JSON error with HTTP 500.
 */
require_once __DIR__.'/helpers.php';

const PCR_JOBS = ['run', 'evict', 'audit_fix', 'audit_compare'];
const PCR_MAX_FIELDS = 20;        // the pages send a handful; PHP cuts a form at max_input_vars silently
const PCR_LOG_WINDOW = 524288;    // bytes read from the end of the log, never more
const PCR_LOG_LEVELS = ['DEBUG' => 10, 'INFO' => 20, 'WARNING' => 30, 'ERROR' => 40, 'CRITICAL' => 50];

/** A refusal: the request is answered {ok:false, error} with this HTTP status, and nothing was done. */
final class PcrRefusal extends RuntimeException {}

function pcr_refuse(string $message, int $http = 400): never {
  throw new PcrRefusal($message, $http);
}

function pcr_send(array $doc, int $http): void {
  if (!headers_sent()) {
    http_response_code($http);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
  }
  echo json_encode($doc, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
}

/** The CLI's document as the answer; HTTP stays 200 because the document says what went wrong. */
function pcr_forward(array $res): array {
  $doc = $res['doc'];
  $doc['exit_code'] = $doc['exit_code'] ?? $res['code'];
  return $doc;
}

// --- the request --------------------------------------------------------------------------------------

/** Refuse a request PHP may have cut: too many fields, or a body over post_max_size (PHP drops it all). */
function pcr_check_input(): void {
  foreach ([$_GET, $_POST] as $fields) {
    if (count($fields, COUNT_RECURSIVE) > PCR_MAX_FIELDS) {
      pcr_refuse('too many fields in one request (PHP may have dropped some): nothing was done', 413);
    }
    foreach ($fields as $name => $value) {
      if (!is_string($value)) pcr_refuse("$name must be one value, not a list");
    }
  }
  $length = (int)($_SERVER['CONTENT_LENGTH'] ?? 0);
  if ($length > pcr_ini_bytes((string)ini_get('post_max_size'))) {
    pcr_refuse('the request is larger than PHP accepts (post_max_size): nothing was done', 413);
  }
}

/** php.ini sizes such as "8M" in bytes (0 means no limit). */
function pcr_ini_bytes(string $size): int {
  $n = (int)$size;
  $unit = strtoupper(substr(trim($size), -1));
  $n *= ['K' => 1024, 'M' => 1048576, 'G' => 1073741824][$unit] ?? 1;
  return $n > 0 ? $n : PHP_INT_MAX;
}

function pcr_param(string $name, string $default = ''): string {
  $fields = ($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST' ? $_POST : $_GET;
  return $fields[$name] ?? $default;   // pcr_check_input made sure it is a string
}

/** Whether Unraid's local_prepend.php ran before this file (it checks the token, then removes it). */
function pcr_unraid_checked_csrf(): bool {
  $prepend = (string)ini_get('auto_prepend_file');
  if (basename($prepend) !== 'local_prepend.php' || !($real = realpath($prepend))) return false;
  return in_array($real, array_map('realpath', get_included_files()), true);
}

function pcr_check_csrf(): void {
  if (pcr_unraid_checked_csrf()) return;   // Unraid's own check is the protection
  $sent = (string)($_POST['csrf_token'] ?? $_SERVER['HTTP_X_CSRF_TOKEN'] ?? '');
  $token = pcr_csrf_token();
  if ($token === '' || $sent === '' || !hash_equals($token, $sent)) pcr_refuse('wrong csrf_token', 403);
}

// --- detached jobs ----------------------------------------------------------------------------------

/** Where detached jobs leave pid, output and exit code; only starting a job creates it (GET writes nothing). */
function pcr_job_dir(bool $create = false): string {
  $dir = rtrim(pcr_path_setting('volatile_dir'), '/').'/web';
  if ($create && !is_dir($dir) && !mkdir($dir, 0700, true)) pcr_refuse("cannot create $dir", 500);
  return $dir;
}

function pcr_job_running(string $name): bool {
  $dir = pcr_job_dir();
  $pid = (int)@file_get_contents("$dir/$name.pid");
  return $pid > 0 && !file_exists("$dir/$name.rc") && @posix_kill($pid, 0);
}

/** A file the job reads its paths from, NUL-separated (a path may hold any character but NUL). */
function pcr_job_paths_file(string $name, array $paths): string {
  $file = pcr_job_dir(true)."/$name.paths";
  $data = implode("\0", $paths);
  if (file_put_contents($file, $data) !== strlen($data)) pcr_refuse("cannot write $file", 500);
  return $file;
}

/** Start the CLI in its own session so closing the browser never stops it; output goes to files. */
function pcr_job_start(string $name, array $args): array {
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
  return ['ok' => true, 'started' => true, 'job' => $name, 'started_at' => microtime(true)];
}

function pcr_job_info(): array {
  $name = pcr_param('name');
  if (!in_array($name, PCR_JOBS, true)) pcr_refuse('unknown job');
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

// --- a run's progress, read from its files -----------------------------------------------------------

/** Whether a run holds its lock: plexcache-r keeps an exclusive flock on run.lock while it runs. */
function pcr_run_locked(string $lock): bool {
  $fh = @fopen($lock, 'r');   // only an existing file: a GET creates nothing
  if (!$fh) return false;
  $free = flock($fh, LOCK_SH | LOCK_NB);
  if ($free) flock($fh, LOCK_UN);
  fclose($fh);
  return !$free;
}

function pcr_read_json(string $file): ?array {
  $doc = json_decode((string)@file_get_contents($file), true);
  return is_array($doc) ? $doc : null;
}

/**
 * What the Dashboard polls while something runs: running or idle, and the progress the run writes, read
 * from the state files directly (they are there for this). No plexcache-r process is started, so an open
 * Dashboard costs next to nothing during a long run; the full `status` is asked for less often.
 */
function pcr_progress(): array {
  $vol = rtrim(pcr_path_setting('volatile_dir'), '/');
  $running = pcr_run_locked("$vol/run.lock");
  $last = pcr_read_json(rtrim(pcr_path_setting('state_dir'), '/').'/last_run.json');
  return ['ok' => true, 'state' => $running ? 'running' : 'idle',
          'progress' => $running ? pcr_read_json("$vol/progress.json") : null,
          'last_run' => $last['last_run'] ?? null];
}

// --- input checks ---------------------------------------------------------------------------------

/** A JSON list field of strings; a field cut in transit no longer parses and is refused. */
function pcr_json_list(string $name): array {
  $list = json_decode(pcr_param($name), true);
  if (!is_array($list) || !array_is_list($list) || !$list) pcr_refuse("$name must be a JSON list, and not empty");
  foreach ($list as $item) if (!is_string($item)) pcr_refuse("$name must be a JSON list of text");
  return $list;
}

/** The posted paths, all files plexcache-r manages and as many as the page says it sent (else nothing runs). */
function pcr_managed_paths(): array {
  $paths = pcr_json_list('paths');
  $sent = pcr_param('count');
  if (!ctype_digit($sent) || (int)$sent !== count($paths)) {
    pcr_refuse('the request was cut short ('.count($paths)." of $sent files arrived): nothing was done");
  }
  $res = pcr_cli(['list'], null, null, 120);
  if (!($res['doc']['ok'] ?? false)) pcr_refuse('cannot read the managed files: '.($res['doc']['error'] ?? 'unknown error'), 503);
  $managed = array_flip(array_column($res['doc']['files'] ?? [], 'path'));
  foreach ($paths as $p) {
    if (!isset($managed[$p])) pcr_refuse('not a file plexcache-r manages: '.$p);
  }
  return array_values(array_unique($paths));
}

function pcr_audit_kinds(): array {
  $kinds = pcr_json_list('kinds');
  // a fix, a finding kind, or a choice for one kind (keep-new:stray); the CLI says which words it knows.
  // keep:PATH names the copy of a duplicate to keep: any path (passed whole through escapeshellarg)
  foreach ($kinds as $k) if (!preg_match('/^[a-z][a-z0-9_-]{0,40}(:[a-z][a-z0-9_-]{0,40})?$/', $k)
    && !preg_match('#^keep:/[^\x00]{1,4095}\z#s', $k)) pcr_refuse('unknown fix');
  return array_values(array_unique($kinds));
}

// --- the log ----------------------------------------------------------------------------------------

/** A bounded tail of the log: at most PCR_LOG_WINDOW bytes are read, filtered by level, text, date range
 * and run (in brackets after the level: the run's id, 20261206-153854-4242, inside a run, else the process
 * id; a process id as the filter shows every line of that process, its runs included). */
function pcr_log_tail(): array {
  $file = pcr_log_file();
  $want = max(1, min(2000, (int)pcr_param('lines', '300')));
  $min = PCR_LOG_LEVELS[strtoupper(pcr_param('level', 'DEBUG'))] ?? 10;
  $q = pcr_param('q');
  $range = pcr_log_range();
  $run = pcr_param('run');
  if ($run !== '' && !preg_match('/^(\d{8}-\d{6}-)?\d+(\.\d+)?$/', $run)) pcr_refuse('run must be the id of a run in the log');
  clearstatcache(true, $file);
  if (!is_file($file)) return ['ok' => true, 'lines' => [], 'offset' => 0, 'size' => 0, 'missing' => true];
  $size = (int)filesize($file);
  $asked = pcr_param('offset');
  $from = $asked === '' ? -1 : (int)$asked;
  if ($from < 0 || $from > $size || $size - $from > PCR_LOG_WINDOW) $from = max(0, $size - PCR_LOG_WINDOW);
  $chunk = pcr_read_bytes($file, $from, $size - $from);
  if ($from > 0 && $asked === '') $chunk = substr($chunk, (int)strpos($chunk, "\n") + 1);
  $lines = [];
  $runs = [];
  $level = 20;
  $stamp = $id = $pid = '';
  foreach (explode("\n", rtrim($chunk, "\n")) as $line) {
    if ($line === '') continue;
    // "2026-01-01 12:00:00,123 INFO    [1234] plexcache.x: text" (older lines name no run); continuation
    // lines keep the level, time and run of the line before them
    if (preg_match('/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[\d,.]* (DEBUG|INFO|WARNING|ERROR|CRITICAL) *(?:\[((?:\d{8}-\d{6}-)?(\d+)(?:\.\d+)?)\])?/', $line, $m)) {
      [$stamp, $level, $id, $pid] = [$m[1], PCR_LOG_LEVELS[$m[2]], $m[3] ?? '', $m[4] ?? ''];
      if ($id !== '') pcr_log_seen($runs, $id, $stamp);
    }
    if ($level < $min || ($q !== '' && stripos($line, $q) === false)) continue;
    if (($run !== '' && $id !== $run && $pid !== $run) || !pcr_log_in_range($stamp, $range)) continue;
    $lines[] = $line;
  }
  return ['ok' => true, 'lines' => array_slice($lines, -$want), 'offset' => $size, 'size' => $size,
          'runs' => array_values($runs)];
}

/** The date range asked for: `from` and `to`, each a day (2026-03-01) or a minute (2026-03-01T09:05), both ends
 * included; '' is open. */
function pcr_log_range(): array {
  $range = [];
  foreach (['from', 'to'] as $end) {
    $value = str_replace('T', ' ', pcr_param($end));
    if ($value !== '' && !preg_match('/^\d{4}-\d\d-\d\d( \d\d:\d\d(:\d\d)?)?$/', $value)) {
      pcr_refuse("$end must be a date (2026-03-01) or a date and time (2026-03-01T09:05)");
    }
    $range[] = $value;
  }
  return $range;
}

/** Whether a line's time falls in the range, compared at the precision each end was given in. */
function pcr_log_in_range(string $stamp, array $range): bool {
  [$from, $to] = $range;
  if ($from !== '' && substr($stamp, 0, strlen($from)) < $from) return false;
  return $to === '' || substr($stamp, 0, strlen($to)) <= $to;
}

/** Each run seen in the window with its first and last time, for the run picker. */
function pcr_log_seen(array &$runs, string $id, string $stamp): void {
  $runs[$id] ??= ['id' => $id, 'first' => $stamp, 'last' => $stamp];
  $runs[$id]['last'] = $stamp;
}

/** `length` bytes from `offset`; nothing to read (an empty log, a tail with nothing new) is an empty string. */
function pcr_read_bytes(string $file, int $offset, int $length): string {
  if ($length <= 0) return '';
  $data = file_get_contents($file, false, null, $offset, $length);
  if ($data === false) pcr_refuse("cannot read $file", 500);
  return $data;
}

// --- the actions ----------------------------------------------------------------------------------------

function pcr_config_set(): array {
  $text = pcr_param('settings');
  if (!(json_decode($text) instanceof stdClass)) pcr_refuse('the settings sent are not a JSON mapping');
  $check = pcr_param('check') !== '';
  $before = @md5_file(pcr_config_path());
  $res = pcr_cli($check ? ['config', 'set', '--merge', '--check'] : ['config', 'set', '--merge'], $text);
  if (($res['doc']['ok'] ?? false) && !$check) {
    $res['doc']['schedule'] = pcr_cli(['schedule', 'apply'])['doc'];
    $res['doc']['live'] = pcr_live_apply(@md5_file(pcr_config_path()) !== $before);
  }
  return pcr_forward($res);
}

/** Live mode follows its setting at once: saved on, it starts (if not running), and restarts when the
 * settings changed (a running watcher keeps the settings it started with); saved off, it stops. The plugin's
 * live service does it (scripts/live), with the command and settings file the pages use. */
function pcr_live_apply(bool $changed): array {
  $on = pcr_cli(['query', 'live-enabled'])['code'] === 0;
  $env = 'PLEXCACHE_CLI='.escapeshellarg(pcr_cli_path()).' PLEXCACHE_CONFIG='.escapeshellarg(pcr_config_path())
    .' PLEXCACHE_LOG_DIR='.escapeshellarg(pcr_path_setting('log_dir'));
  $script = escapeshellarg(dirname(__DIR__).'/scripts/live');
  exec("$env $script ".(!$on ? 'stop' : ($changed ? 'restart' : 'start')).' 2>&1', $out, $code);
  $said = trim(implode(' ', $out));
  return ['enabled' => $on, 'ok' => $code === 0, 'message' => $said, 'restarted' => (bool)preg_match('/\brestarted\b/', $said)];
}

/** Test connection with the form as it is (address and token typed, not saved yet). */
function pcr_plex_try(): array {
  $text = pcr_param('settings');
  if (!(json_decode($text) instanceof stdClass)) pcr_refuse('the settings sent are not a JSON mapping');
  return pcr_forward(pcr_cli(['plex', 'test', '--settings-from', '-'], $text));
}

function pcr_pin(bool $on): array {
  $args = $on ? ['pin', '--paths-from', '-', '--null'] : ['pin', '--off', '--paths-from', '-', '--null'];
  return pcr_forward(pcr_cli($args, implode("\0", pcr_managed_paths())));
}

/** Plex's titles matching `q` (one line, at most 200 bytes), to pin one: `plex search`. */
function pcr_plex_search(): array {
  $q = trim(pcr_param('q'));
  if ($q === '' || strlen($q) > 200 || preg_match('/[\x00-\x1f\x7f]/', $q)) pcr_refuse('search for a title: one line of up to 100 characters');
  return pcr_forward(pcr_cli(['plex', 'search', '--', $q]));
}

/** Pin or unpin a movie, show or season by its rating key: `pin --key` (the CLI asks Plex what it is). */
function pcr_pin_title(bool $on): array {
  $key = pcr_param('key');
  if (!preg_match('/^\d{1,12}$/', $key)) pcr_refuse('key must be the rating key of a movie, show or season');
  return pcr_forward(pcr_cli($on ? ['pin', '--key', $key] : ['pin', '--off', '--key', $key]));
}

function pcr_evict(): array {
  $file = pcr_job_paths_file('evict', pcr_managed_paths());
  return pcr_job_start('evict', ['evict', '--paths-from', $file, '--null']);
}

function pcr_evict_all(): array {
  if (pcr_param('confirm') !== 'all') pcr_refuse('moving every file back needs confirm=all');
  return pcr_job_start('evict', ['evict', '--all']);
}

function pcr_audit_fix(): array {
  $args = ['audit'];
  foreach (pcr_audit_kinds() as $k) array_push($args, '--fix', $k);
  return pcr_job_start('audit_fix', $args);
}

/** Hash every copy of one file (a duplicate's), detached: it reads them whole and spins their disks up. */
function pcr_audit_compare(): array {
  $path = pcr_param('path');
  if (!preg_match('#^/[^\x00]{1,4095}\z#s', $path)) pcr_refuse('path must be a user-share path');
  return pcr_job_start('audit_compare', ['audit', '--compare', $path]);
}

/** Every action: its method and the function that answers it. */
function pcr_actions(): array {
  $cli = fn(array $args, int $timeout = 60) => fn() => pcr_forward(pcr_cli($args, null, null, $timeout));
  return [
    'status' => ['GET', $cli(['status'])],
    'config' => ['GET', $cli(['config', 'show'])],
    'defaults' => ['GET', $cli(['config', 'defaults'])],
    'list' => ['GET', $cli(['list'], 120)],
    'plan' => ['GET', $cli(['plan'], 300)],
    'audit' => ['GET', $cli(['audit'], 300)],
    'audit_cheap' => ['GET', $cli(['audit', '--cheap'], 120)],   // reads no array disk: opening the tab wakes none
    'setup' => ['GET', $cli(['setup', '--check-plex'])],
    'history' => ['GET', $cli(['history'])],
    'plex_test' => ['GET', $cli(['plex', 'test'])],
    'plex_libraries' => ['GET', $cli(['plex', 'libraries'])],
    'plex_users' => ['GET', $cli(['plex', 'users'])],
    'plex_search' => ['GET', 'pcr_plex_search'],
    'progress' => ['GET', 'pcr_progress'],
    'log' => ['GET', 'pcr_log_tail'],
    'job' => ['GET', 'pcr_job_info'],
    'config_set' => ['POST', 'pcr_config_set'],
    'run' => ['POST', fn() => pcr_job_start('run', pcr_param('dry_run') !== '' ? ['run', '--dry-run'] : ['run'])],
    'stop' => ['POST', $cli(['stop'])],
    'evict' => ['POST', 'pcr_evict'],
    'evict_all' => ['POST', 'pcr_evict_all'],
    'pin' => ['POST', fn() => pcr_pin(true)],
    'unpin' => ['POST', fn() => pcr_pin(false)],
    'pin_title' => ['POST', fn() => pcr_pin_title(true)],
    'unpin_title' => ['POST', fn() => pcr_pin_title(false)],
    'audit_fix' => ['POST', 'pcr_audit_fix'],
    'audit_compare' => ['POST', 'pcr_audit_compare'],   // only reads, but starts a job that wakes disks
    // POST although it changes nothing: the form's values may carry a token typed in, never put in a URL
    'plex_try' => ['POST', 'pcr_plex_try'],
    // PIN sign-in: --start asks plex.tv for a code (kept in the volatile dir), --poll stores the token once
    // the code was entered. Poll writes the settings, so it is a POST too.
    'plex_login' => ['POST', $cli(['plex', 'login', '--start'])],
    'plex_login_poll' => ['POST', $cli(['plex', 'login', '--poll'])],
  ];
}

function pcr_dispatch(): array {
  pcr_check_input();
  $method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
  $action = pcr_param('action');
  [$wants, $answer] = pcr_actions()[$action] ?? [null, null];
  if ($answer === null) pcr_refuse('unknown action');
  if ($method !== $wants) pcr_refuse("use $wants for $action", 405);
  if ($method === 'POST') pcr_check_csrf();
  return $answer();
}

// --- errors become answers ------------------------------------------------------------------------------

function pcr_internal_error(string $what, string $file, int $line): void {
  error_log("PHP Error in plexcache-r exec.php: $what in $file on line $line");
  pcr_send(['ok' => false, 'error' => "internal error in exec.php: $what (".basename($file).":$line)"], 500);
}

ini_set('display_errors', '0');   // a warning printed into the reply would break its JSON
set_error_handler(function (int $no, string $message, string $file, int $line): bool {
  if (!(error_reporting() & $no)) return false;   // silenced with @ on purpose
  throw new ErrorException($message, 0, $no, $file, $line);
});
register_shutdown_function(function (): void {   // fatal errors (memory, time) end the script without a throw
  $e = error_get_last();
  if ($e && in_array($e['type'], [E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR], true) && !headers_sent()) {
    pcr_send(['ok' => false, 'error' => 'internal error in exec.php: '.$e['message']], 500);
  }
});
try {
  pcr_send(pcr_dispatch(), 200);
} catch (PcrRefusal $refusal) {
  pcr_send(['ok' => false, 'error' => $refusal->getMessage()], $refusal->getCode());
} catch (Throwable $e) {
  pcr_internal_error(get_class($e).': '.$e->getMessage(), $e->getFile(), $e->getLine());
}
