<?php
/* Stand-in for Unraid's nginx (its locations from rc.nginx), for `php -S` in the page tests:
 *   /Name/Page...   pages: webGui/template.php (nginx: try_files $uri /webGui/template.php)
 *   *.php           run by php with auto_prepend_file = Unraid's local_prepend.php (php-fpm does the same)
 *   anything else   the file under the docroot
 * php -S does not prepend a router script, so the template route includes the prepend itself, once,
 * exactly where php-fpm would have run it. */
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (strpos($path, '/.') !== false) {   // nginx: location ~ /\. { return 404; }
  http_response_code(404);
  return true;
}
if (preg_match('~^/[A-Z]~', $path) && !is_file($_SERVER['DOCUMENT_ROOT'].$path)) {
  $_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/webGui/template.php';
  $_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'].'/webGui/template.php';
  if (ini_get('auto_prepend_file')) require ini_get('auto_prepend_file');
  require $_SERVER['SCRIPT_FILENAME'];
  return true;
}
return false;
