<?php /* Stand-in for the Unraid API's header include (the user menu web component); see ../../README.md. */
