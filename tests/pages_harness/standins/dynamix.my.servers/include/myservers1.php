<?php /* Stand-in for the Unraid API's head include (its web component bundle); see ../../README.md. */
