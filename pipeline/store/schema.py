"""The store-directory contract: which JSONL file holds which resources, and the fields read from each.

Every source (demo, jsonl, shopify) produces this shape; the ingest is its one reader. A raw
column is (name, JSON path, DuckDB type). Values are checked against the type at ingest, so the
raw Parquet is typed and staging only renames, derives and deduplicates.
"""

from dataclasses import dataclass

GID = "GID"  # a Shopify global id such as gid://shopify/Customer/123, its number a positive BIGINT; text in raw
SHOP_CURRENCY = "SHOP_CURRENCY"  # a currency code that must be the shop's currencyCode (shop.jsonl)


@dataclass(frozen=True)
class Column:
    name: str
    path: tuple[str, ...]
    type: str | list | dict  # a DuckDB scalar type, GID, SHOP_CURRENCY, or a from_json shape kept as it is
    required: bool = False
    # Our own closed list (compared trimmed and lowercased): any other value is an error.
    values: tuple[str, ...] = ()
    # Shopify's enum as its reference documents it: another value is counted and warned about, not refused,
    # because Shopify adds values over API versions and one new value must not stop every night.
    known: tuple[str, ...] = ()
    # Read from store directories written before, no longer asked of Shopify (a deprecated field)
    legacy: bool = False

    @property
    def checked(self) -> bool:
        """Whether a value may not fit, and is tested at ingest."""
        return not isinstance(self.type, list | dict) and (self.type != "VARCHAR" or bool(self.values))


@dataclass(frozen=True)
class Resource:
    """One raw table: the lines of `file` that are parents (child_of is None) or children."""

    name: str
    file: str
    typename: str
    columns: tuple[Column, ...]
    child_of: str | None = None  # the parent resource, for lines that carry __parentId

    @property
    def key_column(self) -> Column | None:
        return next((c for c in self.columns if c.required), None)


def col(
    name: str,
    path: str,
    type_: str | list | dict = "VARCHAR",
    required: bool = False,
    values: tuple[str, ...] = (),
    known: tuple[str, ...] = (),
    legacy: bool = False,
) -> Column:
    return Column(name, tuple(path.split(".")), type_, required, values, known, legacy)


MONEY = "DECIMAL(18,4)"  # exact; four places hold every ISO 4217 currency's minor unit
TS = "TIMESTAMPTZ"

TAGS = ["VARCHAR"]
# Shopify's Admin GraphQL enums (2026-10): CustomerState, CustomerEmailMarketingState,
# CustomerSmsMarketingState, CustomerMarketingOptInLevel.
CUSTOMER_STATES = ("ENABLED", "DISABLED", "INVITED", "DECLINED")
EMAIL_MARKETING_STATES = ("INVALID", "NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED")
SMS_MARKETING_STATES = ("NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED")
OPT_IN_LEVELS = ("CONFIRMED_OPT_IN", "SINGLE_OPT_IN", "UNKNOWN")
# CustomerPredictedSpendTier and CustomerProductSubscriberStatus (2026-10), read for the segment language.
PREDICTED_SPEND_TIERS = ("HIGH", "LOW", "MEDIUM")
PRODUCT_SUBSCRIBER_STATES = ("ACTIVE", "CANCELLED", "EXPIRED", "FAILED", "NEVER_SUBSCRIBED", "PAUSED")
# The gateway's event types, our own contract (the segment language's sms_events type).
SMS_EVENT_TYPES = ("sent", "delivered", "clicked", "converted", "opted_out")
# Shopify Email's events and the storefront's, as the segment language names them (shopify_email.opened,
# storefront_event.product_viewed): the Admin API exports neither, so they arrive as inbox files.
EMAIL_EVENT_TYPES = ("bounced", "clicked", "delivered", "marked_as_spam", "opened", "unsubscribed")
STOREFRONT_EVENT_TYPES = ("product_viewed", "collection_viewed")

# Customer.addresses, deprecated in the Admin API for addressesV2 (the customer_addresses lines below): still
# read, so a store directory written before keeps its addresses
ADDRESSES = [{"countryCodeV2": "VARCHAR", "provinceCode": "VARCHAR", "city": "VARCHAR", "zip": "VARCHAR"}]

# Customer.companyContactProfiles: the B2B companies the customer is a contact of
COMPANY_CONTACTS = [{"company": {"id": "VARCHAR"}}]

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "shop",
        "shop.jsonl",
        "Shop",
        (
            col("name", "name"),
            col("iana_timezone", "ianaTimezone"),
            col("currency_code", "currencyCode"),
        ),
    ),
    Resource(
        "customers",
        "customers.jsonl",
        "Customer",
        (
            col("id", "id", GID, required=True),
            col("first_name", "firstName"),
            col("last_name", "lastName"),
            col("created_at", "createdAt", TS),
            col("updated_at", "updatedAt", TS),
            col("state", "state", known=CUSTOMER_STATES),
            col("locale", "locale"),
            col("tags", "tags", TAGS),
            col("email", "defaultEmailAddress.emailAddress"),
            col("email_marketing_state", "defaultEmailAddress.marketingState", known=EMAIL_MARKETING_STATES),
            col("phone", "defaultPhoneNumber.phoneNumber"),
            col("sms_marketing_state", "defaultPhoneNumber.marketingState", known=SMS_MARKETING_STATES),
            col("sms_marketing_opt_in_level", "defaultPhoneNumber.marketingOptInLevel", known=OPT_IN_LEVELS),
            col("sms_marketing_updated_at", "defaultPhoneNumber.marketingUpdatedAt", TS),
            col("default_country", "defaultAddress.countryCodeV2"),
            col("default_province", "defaultAddress.provinceCode"),
            col("default_city", "defaultAddress.city"),
            col("default_zip", "defaultAddress.zip"),
            col("addresses", "addresses", ADDRESSES, legacy=True),
            # Shopify's own filters (predicted_spend_tier, product_subscription_status, companies,
            # customer_within_distance)
            col("predicted_spend_tier", "statistics.predictedSpendTier", known=PREDICTED_SPEND_TIERS),
            col("product_subscriber_status", "productSubscriberStatus", known=PRODUCT_SUBSCRIBER_STATES),
            col("company_contacts", "companyContactProfiles", COMPANY_CONTACTS),
            col("default_latitude", "defaultAddress.latitude", "DOUBLE"),
            col("default_longitude", "defaultAddress.longitude", "DOUBLE"),
        ),
    ),
    # The customer's metafields, store credit accounts and addresses: child lines of customers.jsonl (nested
    # connections of the bulk query), told apart by __typename or, without one, their id's type.
    Resource(
        "customer_metafields",
        "customers.jsonl",
        "Metafield",
        (
            col("id", "id", GID, required=True),
            col("namespace", "namespace"),
            col("key", "key"),
            col("type", "type"),
            col("value", "value"),
        ),
        child_of="customers",
    ),
    Resource(
        "store_credit_accounts",
        "customers.jsonl",
        "StoreCreditAccount",
        (
            col("id", "id", GID, required=True),
            # in the account's own currency, which need not be the shop's
            col("balance", "balance.amount", MONEY),
            col("currency_code", "balance.currencyCode"),
        ),
        child_of="customers",
    ),
    # Customer.addressesV2: every address of the customer, the default one too, as Shopify geocoded it. The
    # id is not a plain GID (gid://shopify/MailingAddress/1?model_name=CustomerAddress), so it stays text.
    Resource(
        "customer_addresses",
        "customers.jsonl",
        "MailingAddress",
        (
            col("id", "id", required=True),
            col("country", "countryCodeV2"),
            col("province", "provinceCode"),
            col("city", "city"),
            col("zip", "zip"),
            col("latitude", "latitude", "DOUBLE"),
            col("longitude", "longitude", "DOUBLE"),
        ),
        child_of="customers",
    ),
    Resource(
        "orders",
        "orders.jsonl",
        "Order",
        (
            col("id", "id", GID, required=True),
            col("name", "name"),
            col("customer_id", "customer.id", GID),
            col("created_at", "createdAt", TS),
            col("processed_at", "processedAt", TS),
            col("updated_at", "updatedAt", TS),
            col("cancelled_at", "cancelledAt", TS),
            col("test", "test", "BOOLEAN"),
            col("financial_status", "displayFinancialStatus"),
            col("currency_code", "currencyCode"),
            col("total_price", "totalPriceSet.shopMoney.amount", MONEY),
            col("total_price_currency", "totalPriceSet.shopMoney.currencyCode", SHOP_CURRENCY),
            col("current_total_price", "currentTotalPriceSet.shopMoney.amount", MONEY),
            col("current_total_price_currency", "currentTotalPriceSet.shopMoney.currencyCode", SHOP_CURRENCY),
        ),
    ),
    Resource(
        "order_lines",
        "orders.jsonl",
        "LineItem",
        (
            col("id", "id", GID, required=True),
            col("product_id", "product.id", GID),
            col("variant_id", "variant.id", GID),
            col("sku", "sku"),
            col("title", "title"),
            col("quantity", "quantity", "INTEGER"),
            col("original_total", "originalTotalSet.shopMoney.amount", MONEY),
            col("original_total_currency", "originalTotalSet.shopMoney.currencyCode", SHOP_CURRENCY),
        ),
        child_of="orders",
    ),
    Resource(
        "products",
        "products.jsonl",
        "Product",
        (
            col("id", "id", GID, required=True),
            col("title", "title"),
            col("handle", "handle"),
            col("product_type", "productType"),
            col("vendor", "vendor"),
            col("tags", "tags", TAGS),
            col("updated_at", "updatedAt", TS),
        ),
    ),
    Resource(
        "product_collections",
        "products.jsonl",
        "Collection",
        (
            col("id", "id", GID, required=True),
            col("handle", "handle"),
            col("title", "title"),
        ),
        child_of="products",
    ),
    Resource(
        "abandoned_checkouts",
        "abandoned_checkouts.jsonl",
        "AbandonedCheckout",
        (
            col("id", "id", GID, required=True),
            col("created_at", "createdAt", TS),
            col("updated_at", "updatedAt", TS),
            col("completed_at", "completedAt", TS),
            col("abandoned_checkout_url", "abandonedCheckoutUrl"),
            col("customer_id", "customer.id", GID),
            col("total_price", "totalPriceSet.shopMoney.amount", MONEY),
            col("total_price_currency", "totalPriceSet.shopMoney.currencyCode", SHOP_CURRENCY),
        ),
    ),
    Resource(
        "sms_events",
        "sms_events.jsonl",
        "SmsEvent",
        (
            col("phone", "phone", required=True),
            col("type", "type", required=True, values=SMS_EVENT_TYPES),
            col("campaign", "campaign"),
            col("occurred_at", "occurredAt", TS),
        ),
    ),
    # Shopify Email activity of a customer: which marketing activity (campaign) and when
    Resource(
        "shopify_email_events",
        "shopify_email_events.jsonl",
        "ShopifyEmailEvent",
        (
            col("customer_id", "customer.id", GID, required=True),
            col("type", "type", required=True, values=EMAIL_EVENT_TYPES),
            col("activity_id", "marketingActivity.id", GID),
            col("occurred_at", "occurredAt", TS, required=True),
        ),
    ),
    # A customer's storefront browsing: the product or collection viewed, and when
    Resource(
        "storefront_events",
        "storefront_events.jsonl",
        "StorefrontEvent",
        (
            col("customer_id", "customer.id", GID, required=True),
            col("type", "type", required=True, values=STOREFRONT_EVENT_TYPES),
            col("product_id", "product.id", GID),
            col("collection_id", "collection.id", GID),
            col("occurred_at", "occurredAt", TS, required=True),
        ),
    ),
    Resource(
        "redactions",
        "redactions.jsonl",
        "CustomerRedaction",
        (
            col("customer_id", "customer.id", GID, required=True),
            col("requested_at", "requestedAt", TS),
        ),
    ),
    # customers/delete webhooks: the customer leaves marts.customers (and every audience); orders stay
    Resource(
        "deletions",
        "deletions.jsonl",
        "CustomerDeletion",
        (
            col("customer_id", "customer.id", GID, required=True),
            col("deleted_at", "deletedAt", TS),
        ),
    ),
    # every customer id Shopify still has, swept in full each night by --source shopify: a customer
    # missing from the latest sweep was deleted (bulk queries report changes, never deletions)
    Resource("customer_ids", "customer_ids.jsonl", "Customer", (col("id", "id", GID, required=True),)),
)

REQUIRED_FILES = ("shop.jsonl", "customers.jsonl", "orders.jsonl", "products.jsonl", "abandoned_checkouts.jsonl")
# Webhooks, gateway events, Shopify Email and storefront events: with --source shopify they are read from
# data/inbox/, not the download
INBOX_FILES = (
    "sms_events.jsonl",
    "redactions.jsonl",
    "deletions.jsonl",
    "shopify_email_events.jsonl",
    "storefront_events.jsonl",
)
OPTIONAL_FILES = (*INBOX_FILES, "customer_ids.jsonl")
STORE_FILES = REQUIRED_FILES + OPTIONAL_FILES


def resources_in(file: str) -> tuple[Resource, ...]:
    return tuple(r for r in RESOURCES if r.file == file)


def resource(name: str) -> Resource:
    return next(r for r in RESOURCES if r.name == name)
