# to: recipient+lists@example.com
require ["envelope", "subaddress"]; if envelope :detail "to" "lists" { discard; }
