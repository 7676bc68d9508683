// What the operator is shown and told: a workbook of the operator queries in infra/queries, and an alert when
// too many calls fail, mailed through an action group when an address is given. The queries run in Application
// Insights' own (classic) schema, which stays queryable on a workspace-based component, alerts included:
// https://learn.microsoft.com/azure/azure-monitor/app/convert-classic-resource#understand-log-queries
param actionGroupName string
param alertName string
param location string
param tags object
param applicationInsightsId string
param alertEmail string
param callFailureAlertPercent int

var sevenDays = 604800000

resource alertMail 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  // An action group is global, as Azure Monitor's own samples deploy it:
  // https://learn.microsoft.com/azure/azure-monitor/alerts/resource-manager-action-groups
  location: 'Global'
  tags: tags
  // https://learn.microsoft.com/azure/templates/microsoft.insights/2023-01-01/actiongroups
  properties: {
    groupShortName: 'calls'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource callFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertName
  location: location
  tags: tags
  // https://learn.microsoft.com/azure/templates/microsoft.insights/2023-12-01/scheduledqueryrules
  properties: {
    displayName: 'Calls failing'
    description: 'More than ${callFailureAlertPercent}% of the calls that ended in the last hour failed: busy, no-answer, failed or canceled, or ended with a Twilio error code. infra/queries/failures.kql lists them with their codes.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/call-failure-share.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'FailedPercent'
          operator: 'GreaterThan'
          threshold: callFailureAlertPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: empty(alertEmail) ? [] : [alertMail.id]
    }
  }
}

resource operatorWorkbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID: https://learn.microsoft.com/azure/azure-monitor/visualize/workbooks-automate
  name: guid(resourceGroup().id, 'operator-workbook')
  location: location
  tags: tags
  // https://learn.microsoft.com/azure/templates/microsoft.insights/2023-06-01/workbooks
  kind: 'shared'
  // https://learn.microsoft.com/azure/templates/microsoft.insights/2023-06-01/workbooks
  properties: {
    displayName: 'Calls and texts'
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string({
      version: 'Notebook/1.0'
      items: [
        {
          type: 3
          name: 'outcomes'
          content: {
            version: 'KqlItem/1.0'
            title: 'Calls and texts by outcome, per hour'
            query: loadTextContent('../queries/outcomes-per-hour.kql')
            timeContext: { durationMs: sevenDays }
            queryType: 0
            resourceType: 'microsoft.insights/components'
          }
        }
        {
          type: 3
          name: 'failures'
          content: {
            version: 'KqlItem/1.0'
            title: 'Failed calls and undelivered texts, with Twilio\'s error codes'
            query: loadTextContent('../queries/failures.kql')
            timeContext: { durationMs: sevenDays }
            queryType: 0
            resourceType: 'microsoft.insights/components'
          }
        }
        {
          type: 3
          name: 'latency'
          content: {
            version: 'KqlItem/1.0'
            title: 'Time each function took (ms), last 24 hours'
            query: loadTextContent('../queries/webhook-latency.kql')
            timeContext: { durationMs: sevenDays }
            queryType: 0
            resourceType: 'microsoft.insights/components'
          }
        }
        {
          type: 9
          name: 'key'
          content: {
            version: 'KqlParameterItem/1.0'
            parameters: [
              {
                id: guid(resourceGroup().id, 'operator-workbook', 'IdempotencyKey')
                version: 'KqlParameterItem/1.0'
                name: 'IdempotencyKey'
                label: 'Idempotency-Key'
                type: 1
                isRequired: false
              }
            ]
            style: 'pills'
            queryType: 0
            resourceType: 'microsoft.insights/components'
          }
        }
        {
          type: 3
          name: 'replays'
          content: {
            version: 'KqlItem/1.0'
            title: 'The requests that used this Idempotency-Key'
            query: loadTextContent('../queries/replay-chain.kql')
            timeContext: { durationMs: sevenDays }
            queryType: 0
            resourceType: 'microsoft.insights/components'
          }
        }
      ]
      fallbackResourceIds: [
        applicationInsightsId
      ]
      '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
    })
  }
}
