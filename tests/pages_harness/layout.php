<?php
/* pages harness: the document around the plugin's tabs, shaped like Unraid's DefaultPageLayout
 * (header, menu, #displaybox with nav.tabs and one section per tab). Styles: shim.css. */
require_once __DIR__.'/pages.php';

function harness_layout($parent, $theme = 'white') {
  global $docroot, $var;
  $site = harness_build_pages("$docroot/plugins/plexcache-r");
  $me = $site[$parent] ?? null;
  if (!$me) { http_response_code(404); return "no page $parent"; }
  $pages = [];
  if (trim($me['text']) !== '') $pages[$me['name']] = $me;
  if (($me['Type'] ?? '') === 'xmenu') $pages += harness_find_pages($site, $parent);
  $theme = in_array($theme, ['white', 'black', 'azure', 'gray'], true) ? $theme : 'white';
  ob_start(); ?>
<!DOCTYPE html>
<html lang="en" class="theme-<?=$theme?>">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tower/<?=htmlspecialchars($parent)?></title>
<link rel="stylesheet" href="/harness/shim.css">
<?php if (getenv('UNRAID_WEBGUI_DIR')): /* optional: Unraid's own stylesheets from a checkout outside the repo */ ?>
<?php foreach (['default-fonts', 'default-color-palette', 'font-awesome', 'default-base', "themes/$theme"] as $css): ?>
<link rel="stylesheet" href="/webGui/styles/<?=$css?>.css">
<?php endforeach; ?><style>.fa { display: inline-block; }</style>
<?php endif; ?>
<script>var csrf_token = "<?=htmlspecialchars($var['csrf_token'] ?? '')?>";
function done() { location.href = '/Settings'; }</script>
</head>
<body>
<div id="harness-header"><span class="logo">UNRAID</span><span class="server">Tower <small>Media server</small></span>
  <a href="#" id="help-toggle" title="Help" onclick="document.body.classList.toggle('show-help');return false">?</a></div>
<div id="harness-menu"><a href="/Main">Main</a><a href="/Shares">Shares</a><a href="/Users">Users</a><a href="/Settings" class="active">Settings</a><a href="/Plugins">Plugins</a><a href="/Docker">Docker</a><a href="/Apps">Apps</a><a href="/Tools">Tools</a></div>
<div id="displaybox">
<nav class="tabs" role="tablist"><div class="tabs-container">
<?php $i = 0; foreach ($pages as $p): $i++; ?>
<button role="tab" id="tab<?=$i?>" aria-controls="tab<?=$i?>-panel" aria-selected="<?=$i == 1 ? 'true' : 'false'?>"><i class="fa fa-<?=htmlspecialchars($p['Tag'] ?? 'th')?>"></i><?=htmlspecialchars(_($p['Title']))?></button>
<?php endforeach; ?>
</div></nav>
<?php $i = 0; foreach ($pages as $p): $i++; ?>
<!-- <?=basename($p['file'])?> -->
<section id="tab<?=$i?>-panel" role="tabpanel" aria-labelledby="tab<?=$i?>" class="tab-content content"<?=$i == 1 ? " style=\"display:block\"" : " hidden"?>>
<?=harness_render_body($p)?>
</section>
<?php endforeach; ?>
</div>
<script>
document.querySelectorAll('nav.tabs [role=tab]').forEach(function (b) {
  b.addEventListener('click', function () {
    document.querySelectorAll('nav.tabs [role=tab]').forEach(function (o) {
      o.setAttribute('aria-selected', o === b ? 'true' : 'false');
      var panel = document.getElementById(o.getAttribute("aria-controls")); panel.hidden = o !== b; panel.style.display = o === b ? "block" : "none";
    });
  });
});
</script>
</body>
</html>
<?php
  return ob_get_clean();
}
