<!-- placeholder, replaced by the web page work -->
