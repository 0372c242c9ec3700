<?php
/* pages harness: router for `php -S 127.0.0.1:PORT router.php`.
 *   /Settings/PlexCacheR[?theme=black]       the tabbed page, rendered from the .page files
 *   /plugins/plexcache-r/include/exec.php     the real endpoint
 *   /plugins/plexcache-r/{js,css,images}/...  the plugin's assets
 *   /harness/shim.css                         the stand-in for Unraid's stylesheets
 */
require_once __DIR__.'/layout.php';

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$types = ['css' => 'text/css', 'js' => 'application/javascript', 'png' => 'image/png', 'svg' => 'image/svg+xml'];

function harness_static($file, $types) {
  $ext = pathinfo($file, PATHINFO_EXTENSION);
  if (!is_file($file) || !isset($types[$ext])) { http_response_code(404); echo 'not found'; return; }
  header('Content-Type: '.$types[$ext]);
  readfile($file);
}

if ($path === '/' || $path === '/Settings/PlexCacheR') {
  echo harness_layout('PlexCacheR', $_GET['theme'] ?? 'white');
} elseif ($path === '/plugins/plexcache-r/include/exec.php') {
  require "$docroot/plugins/plexcache-r/include/exec.php";
} elseif (preg_match('~^/plugins/plexcache-r/((js|css|images)/[\w.-]+)$~', $path, $m)) {
  harness_static("$docroot/plugins/plexcache-r/{$m[1]}", $types);
} elseif ($path === '/harness/shim.css') {
  harness_static(__DIR__.'/shim.css', $types);
} elseif (getenv('UNRAID_WEBGUI_DIR') && preg_match('~^/webGui/styles/([\w/.-]+\.(css|woff|woff2|ttf|png))$~', $path, $m) && strpos($m[1], '..') === false) {
  harness_static(getenv('UNRAID_WEBGUI_DIR')."/emhttp/plugins/dynamix/styles/{$m[1]}", $types + ['woff' => 'font/woff', 'woff2' => 'font/woff2', 'ttf' => 'font/ttf']);
} else {
  http_response_code(404);
  echo 'not found';
}
