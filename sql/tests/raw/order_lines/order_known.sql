-- warning: every line item's order was extracted
select _batch, _line, id, _parent_id
from raw.order_lines
where _parent_id not in (select id from raw.orders)
